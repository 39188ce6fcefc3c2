// Subscribes to an rpacloud daemon with the graphql-ws client and prints
// every event it receives as one JSON line, then exits once it has seen
// RPACLOUD_WANT events (or fails after RPACLOUD_TIMEOUT_MS).
//
//   RPACLOUD_URL=ws://127.0.0.1:8080/graphql RPACLOUD_TOKEN=... node subscribe.mjs
import { createClient } from "graphql-ws";
import WebSocket from "ws";

const url = process.env.RPACLOUD_URL;
const token = process.env.RPACLOUD_TOKEN;
const want = Number(process.env.RPACLOUD_WANT || "1");
const timeout = Number(process.env.RPACLOUD_TIMEOUT_MS || "60000");

const client = createClient({
  url,
  webSocketImpl: WebSocket,
  connectionParams: { Authorization: `Bearer ${token}` },
  retryAttempts: 0,
  on: { connected: () => console.log(JSON.stringify({ connected: true })) },
});

const timer = setTimeout(() => {
  console.error(`timed out after ${timeout} ms`);
  process.exit(2);
}, timeout);

let seen = 0;
const query = `subscription($f: LiveEventFilter) { events(filter: $f) { id type status taskID batchID poolID processID robotID vendor message at } }`;
const done = client.subscribe(
  { query, variables: { f: { typePrefixes: ["task."] } } },
  {
    next: (r) => {
      if (r.errors) {
        console.error(JSON.stringify(r.errors));
        process.exit(3);
      }
      console.log(JSON.stringify(r.data.events));
      if (++seen >= want) {
        clearTimeout(timer);
        done();
        client.dispose();
      }
    },
    error: (e) => {
      console.error("subscription error:", e instanceof Error ? e.message : JSON.stringify(e));
      process.exit(4);
    },
    complete: () => {},
  },
);

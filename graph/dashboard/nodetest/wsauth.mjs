// Connects to an rpacloud daemon with the graphql-ws client configured as
// a typical app that retries every close for ever (graphql-ws's own
// recipe: retryAttempts Infinity, shouldRetry () => true), subscribes, and
// reports each connection attempt and close as one JSON line. Once the
// first close is seen it counts attempts for RPACLOUD_WINDOW_MS more and
// prints {"attempts": n, "codes": [...]} before exiting: a client that
// reconnects in a loop shows many attempts.
//
//   RPACLOUD_URL=ws://127.0.0.1:8080/graphql RPACLOUD_TOKEN=... node wsauth.mjs
import { createClient } from "graphql-ws";
import WebSocket from "ws";

const url = process.env.RPACLOUD_URL;
const token = process.env.RPACLOUD_TOKEN;
const windowMs = Number(process.env.RPACLOUD_WINDOW_MS || "3000");
const timeout = Number(process.env.RPACLOUD_TIMEOUT_MS || "60000");

const out = (o) => console.log(JSON.stringify(o));
let attempts = 0;
const codes = [];
let window = null;

const client = createClient({
  url,
  webSocketImpl: WebSocket,
  connectionParams: { Authorization: `Bearer ${token}` },
  retryAttempts: Infinity,
  shouldRetry: () => true,
  retryWait: () => new Promise((resolve) => setTimeout(resolve, 200)),
  on: {
    connecting: () => {
      attempts++;
    },
    connected: () => out({ event: "connected" }),
    closed: (e) => {
      codes.push(e.code);
      out({ event: "closed", code: e.code, reason: e.reason });
      window ??= setTimeout(() => {
        out({ attempts, codes: codes.slice(0, 20) });
        client.dispose();
        process.exit(0);
      }, windowMs);
    },
  },
});

setTimeout(() => {
  console.error(`timed out after ${timeout} ms`);
  process.exit(2);
}, timeout);

client.subscribe(
  { query: `subscription { events { id type } }` },
  {
    next: () => {},
    error: (e) => out({ event: "error", code: e?.code ?? null }),
    complete: () => {},
  },
);

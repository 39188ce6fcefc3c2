// Sends the npm graphql package's introspection query to an rpacloud
// daemon, as GraphiQL, Postman and graphql-codegen do (with its default
// options and with every option on), builds a client schema from each
// answer and prints one JSON line per variant. Exits non-zero on any error.
//
//   RPACLOUD_URL=http://127.0.0.1:8080/graphql RPACLOUD_TOKEN=... node introspect.mjs
import { buildClientSchema, getIntrospectionQuery } from "graphql";

const url = process.env.RPACLOUD_URL;
const token = process.env.RPACLOUD_TOKEN;

const variants = {
  default: {},
  full: {
    descriptions: true,
    specifiedByUrl: true,
    directiveIsRepeatable: true,
    schemaDescription: true,
    inputValueDeprecation: true,
  },
};

for (const [variant, options] of Object.entries(variants)) {
  const r = await fetch(url, {
    method: "POST",
    headers: { "Content-Type": "application/json", Authorization: `Bearer ${token}` },
    body: JSON.stringify({ query: getIntrospectionQuery(options), operationName: "IntrospectionQuery" }),
  });
  const body = await r.json();
  if (r.status !== 200 || body.errors) {
    console.error(`${variant}: HTTP ${r.status}: ${JSON.stringify(body.errors)}`);
    process.exit(3);
  }
  const schema = buildClientSchema(body.data);
  const query = schema.getQueryType();
  console.log(
    JSON.stringify({
      variant,
      types: Object.keys(schema.getTypeMap()).length,
      query: query.name,
      queryFields: Object.keys(query.getFields()),
      subscription: schema.getSubscriptionType()?.name ?? null,
    }),
  );
}

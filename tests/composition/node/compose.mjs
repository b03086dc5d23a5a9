// Yardstick for router/composition.py: compose subgraph SDLs with Apollo's own
// @apollo/composition and print the supergraph and its API schema.
//
// stdin:  [{"name": "...", "url": "...", "sdl": "..."}, ...]
// stdout: {"supergraphSdl": string|null, "apiSchema": string|null, "errors": [string]}
import { composeServices } from "@apollo/composition";
import { Supergraph } from "@apollo/federation-internals";
import { parse, printSchema } from "graphql";

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const input = JSON.parse(Buffer.concat(chunks).toString("utf8"));

const out = { supergraphSdl: null, apiSchema: null, errors: [] };
try {
  const services = input.map((s) => ({ name: s.name, url: s.url, typeDefs: parse(s.sdl) }));
  const result = composeServices(services);
  if (result.errors) {
    out.errors = result.errors.map((e) => e.message);
  } else {
    out.supergraphSdl = result.supergraphSdl;
    const api = Supergraph.build(result.supergraphSdl).apiSchema();
    out.apiSchema = printSchema(api.toGraphQLJSSchema());
  }
} catch (e) {
  out.errors = [String(e && e.message ? e.message : e)];
}
process.stdout.write(JSON.stringify(out));

// Apollo Gateway in front of running subgraphs: the reference our router is compared with.
//
//   node gateway.mjs --port PORT --subgraph hub=http://127.0.0.1:8001/graphql \
//                    --subgraph realm=http://127.0.0.1:8002/graphql [--write-supergraph FILE]
//   node gateway.mjs --port PORT --supergraph FILE
//
// With --subgraph, the SDL of each subgraph is fetched from its `_service { sdl }` and composed
// with @apollo/composition (composition errors are printed and the process exits 2). With
// --supergraph, a supergraph composed elsewhere is served as it is. The gateway forwards the
// headers our router forwards (see router/transport.py FORWARDED_HEADERS), so dev-mode viewers
// reach the subgraphs the same way through both. "ready <url>" on stdout means it serves.

import { readFile, writeFile } from "node:fs/promises";
import { parseArgs } from "node:util";

import { composeServices } from "@apollo/composition";
import { ApolloGateway, RemoteGraphQLDataSource } from "@apollo/gateway";
import { ApolloServer } from "@apollo/server";
import { startStandaloneServer } from "@apollo/server/standalone";
import { parse } from "graphql";

const FORWARDED_HEADERS = ["authorization", "x-pek-dev-user", "accept-language"];

function fail(message, code = 1) {
  process.stderr.write(`gateway.mjs: ${message}\n`);
  process.exit(code);
}

async function fetchSdl(name, url, waitSeconds) {
  const deadline = Date.now() + waitSeconds * 1000;
  let last = "";
  for (;;) {
    try {
      const response = await fetch(url, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ query: "{ _service { sdl } }" }),
      });
      const body = await response.json();
      const sdl = body?.data?._service?.sdl;
      if (typeof sdl === "string") return sdl;
      last = `no SDL in the answer: ${JSON.stringify(body).slice(0, 300)}`;
    } catch (error) {
      last = String(error);
    }
    if (Date.now() > deadline) fail(`subgraph ${name} at ${url} gave no SDL (${last})`);
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

async function composeFromServices(subgraphs) {
  const services = [];
  for (const [name, url] of subgraphs) {
    const sdl = await fetchSdl(name, url, 60);
    services.push({ name, url, typeDefs: parse(sdl) });
  }
  const result = composeServices(services);
  if (result.errors?.length) {
    fail(`composition failed:\n${result.errors.map((e) => `  ${e.message}`).join("\n")}`, 2);
  }
  return result.supergraphSdl;
}

async function main() {
  const { values } = parseArgs({
    options: {
      port: { type: "string" },
      host: { type: "string", default: "127.0.0.1" },
      subgraph: { type: "string", multiple: true, default: [] },
      supergraph: { type: "string" },
      "write-supergraph": { type: "string" },
    },
  });
  if (!values.port) fail("--port is required");
  let supergraphSdl;
  if (values.supergraph) {
    supergraphSdl = await readFile(values.supergraph, "utf8");
  } else {
    if (values.subgraph.length === 0) fail("give --supergraph FILE or --subgraph NAME=URL ...");
    const subgraphs = values.subgraph.map((spec) => {
      const at = spec.indexOf("=");
      if (at <= 0) fail(`--subgraph wants NAME=URL, got ${spec}`);
      return [spec.slice(0, at), spec.slice(at + 1)];
    });
    supergraphSdl = await composeFromServices(subgraphs);
  }
  if (values["write-supergraph"]) await writeFile(values["write-supergraph"], supergraphSdl);

  const gateway = new ApolloGateway({
    supergraphSdl,
    buildService: ({ url }) =>
      new RemoteGraphQLDataSource({
        url,
        willSendRequest({ request, context }) {
          for (const name of FORWARDED_HEADERS) {
            const value = context?.headers?.[name];
            if (typeof value === "string" && value.trim()) request.http.headers.set(name, value);
          }
        },
      }),
  });
  const server = new ApolloServer({
    gateway,
    introspection: true,
    // Stack traces would make every error differ from the router's; they say nothing here.
    includeStacktraceInErrorResponses: false,
  });
  const { url } = await startStandaloneServer(server, {
    listen: { host: values.host, port: Number(values.port) },
    context: async ({ req }) => ({ headers: req.headers }),
  });
  process.stdout.write(`ready ${url}\n`);

  const stop = async () => {
    await server.stop();
    process.exit(0);
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}

main().catch((error) => fail(error?.stack ?? String(error)));

// Runs Apollo Client's persisted-query link against a GraphQL endpoint and prints, as JSON,
// every HTTP exchange it made and the results it got.
// Usage: node apq.mjs URL (get|post)
import { createHash } from "node:crypto";

import { ApolloClient, HttpLink, InMemoryCache, gql } from "@apollo/client/core/index.js";
import { createPersistedQueryLink } from "@apollo/client/link/persisted-queries/index.js";

const [url, mode] = process.argv.slice(2);
const exchanges = [];

async function recordingFetch(input, init) {
  const response = await fetch(input, init);
  const text = await response.clone().text();
  const target = new URL(typeof input === "string" ? input : input.url);
  const body = init?.body ? JSON.parse(init.body) : null;
  exchanges.push({
    method: init?.method ?? "GET",
    sentQuery: Boolean(body?.query ?? target.searchParams.get("query")),
    sentHash: Boolean(
      body?.extensions?.persistedQuery ?? target.searchParams.get("extensions"),
    ),
    status: response.status,
    answer: JSON.parse(text),
  });
  return response;
}

const sha256 = (text) => createHash("sha256").update(text).digest("hex");

function client() {
  const persisted = createPersistedQueryLink({ sha256, useGETForHashedQueries: mode === "get" });
  return new ApolloClient({
    link: persisted.concat(new HttpLink({ uri: url, fetch: recordingFetch })),
    cache: new InMemoryCache(),
  });
}

const HELLO = gql`query Hello($name: String) { hello(name: $name) }`;
const RENAME = gql`mutation Rename($name: String!) { rename(name: $name) }`;

const results = [];
const first = client();
results.push((await first.query({ query: HELLO, variables: { name: "one" }, fetchPolicy: "no-cache" })).data);
results.push((await first.query({ query: HELLO, variables: { name: "two" }, fetchPolicy: "no-cache" })).data);
// a second browser tab: a new client, the router already knows the query
const second = client();
results.push((await second.query({ query: HELLO, variables: { name: "three" }, fetchPolicy: "no-cache" })).data);
results.push((await second.mutate({ mutation: RENAME, variables: { name: "m" } })).data);
process.stdout.write(JSON.stringify({ results, exchanges }));

// A real OpenID Connect provider for the sign-in tests: panva/oidc-provider with its built-in
// development login and consent pages (any login name is accepted, the password is ignored).
// Configuration comes from the environment; it prints "ready <issuer>" once it listens.
import Provider from "oidc-provider";

const port = Number(process.env.PORT);
const issuer = `http://127.0.0.1:${port}`;
const clientId = process.env.CLIENT_ID;
const clientSecret = process.env.CLIENT_SECRET;
const redirectUris = process.env.REDIRECT_URIS.split(" ");

// Every login name is an account; its claims are derived from the name so tests can predict
// them ("anna" -> Anna Teszt, anna@example.org).
function claimsOf(login) {
  const given = login.charAt(0).toUpperCase() + login.slice(1);
  return {
    sub: login,
    name: `Teszt ${given}`,
    given_name: given,
    family_name: "Teszt",
    nickname: `${given}ka`,
    preferred_username: login,
    email: `${login}@example.org`,
    email_verified: true,
    phone_number: "+36 1 463 1111",
    birthdate: "2001-02-03",
  };
}

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: clientId,
      client_secret: clientSecret,
      redirect_uris: redirectUris,
      grant_types: ["authorization_code"],
      response_types: ["code"],
      token_endpoint_auth_method: "client_secret_basic",
    },
  ],
  pkce: { required: () => true, methods: ["S256"] },
  claims: {
    openid: ["sub"],
    profile: ["name", "given_name", "family_name", "nickname", "preferred_username", "birthdate"],
    email: ["email", "email_verified"],
    phone: ["phone_number"],
  },
  features: { devInteractions: { enabled: true } },
  cookies: { keys: ["pek-test-provider-cookie-key"] },
  async findAccount(ctx, id) {
    return { accountId: id, async claims() { return claimsOf(id); } };
  },
});
provider.on("server_error", (ctx, err) => console.error("server_error", err));

provider.listen(port, "127.0.0.1", () => {
  console.log(`ready ${issuer}`);
});

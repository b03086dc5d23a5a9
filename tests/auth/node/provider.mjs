// A real OpenID Connect provider for the sign-in tests: panva/oidc-provider with its built-in
// development login and consent pages (any login name is accepted, the password is ignored).
// Configuration comes from the environment; it prints "ready <issuer>" once it listens.
//
// Switches (all optional):
//   FAMILY_NAME, EMAIL_DOMAIN  the family name and e-mail domain of every account ("Teszt",
//                              "example.org"), so that two providers' claims can be told apart
//   STYLE=authsch              AuthSCH's shape: authorization at /site/login, token at
//                              /oauth2/token, userinfo at /oidc/userinfo; a UUID `sub`; the
//                              provider-specific claims `meta.bme.hu:unitScope` and `roles`
//   LOG_REQUESTS=1             print "request <METHOD> <path> <auth scheme or ->" for each
//                              request (after the ready line), for tests to check what clients did
import { createHash } from "node:crypto";
import Provider from "oidc-provider";

const port = Number(process.env.PORT);
const issuer = `http://127.0.0.1:${port}`;
const clientId = process.env.CLIENT_ID;
const clientSecret = process.env.CLIENT_SECRET;
const redirectUris = process.env.REDIRECT_URIS.split(" ");
const familyName = process.env.FAMILY_NAME || "Teszt";
const emailDomain = process.env.EMAIL_DOMAIN || "example.org";
const authsch = process.env.STYLE === "authsch";

// A stable UUID (version 5 layout) of a login name: AuthSCH's subjects are UUIDs.
function uuidOf(login) {
  const h = createHash("sha1").update(`authsch-test:${login}`).digest("hex");
  const variant = ((parseInt(h[16], 16) & 0x3) | 0x8).toString(16);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-5${h.slice(13, 16)}-${variant}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

// Every login name is an account; its claims are derived from the name so tests can predict
// them ("anna" -> Anna Teszt, anna@example.org).
function claimsOf(login) {
  const given = login.charAt(0).toUpperCase() + login.slice(1);
  const claims = {
    sub: authsch ? uuidOf(login) : login,
    name: `${familyName} ${given}`,
    given_name: given,
    family_name: familyName,
    email: `${login}@${emailDomain}`,
    email_verified: true,
    phone_number: "+36 1 463 1111",
    birthdate: "2001-02-03",
  };
  if (authsch) {
    // AuthSCH sends no nickname or preferred_username, but claims of its own.
    claims["meta.bme.hu:unitScope"] = ["BME", "BME_VIK", "BME_VIK_ACTIVE"];
    claims.roles = ["STUDENT"];
  } else {
    claims.nickname = `${given}ka`;
    claims.preferred_username = login;
  }
  return claims;
}

const profileClaims = authsch
  ? ["name", "given_name", "family_name", "birthdate", "meta.bme.hu:unitScope", "roles"]
  : ["name", "given_name", "family_name", "nickname", "preferred_username", "birthdate"];

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
    profile: profileClaims,
    email: ["email", "email_verified"],
    phone: ["phone_number"],
  },
  ...(authsch
    ? { routes: { authorization: "/site/login", token: "/oauth2/token", userinfo: "/oidc/userinfo" } }
    : {}),
  features: { devInteractions: { enabled: true } },
  cookies: { keys: ["pek-test-provider-cookie-key"] },
  async findAccount(ctx, id) {
    return { accountId: id, async claims() { return claimsOf(id); } };
  },
});
provider.on("server_error", (ctx, err) => console.error("server_error", err));

if (process.env.LOG_REQUESTS === "1") {
  provider.use(async (ctx, next) => {
    const scheme = (ctx.get("authorization") || "-").split(" ")[0];
    console.log(`request ${ctx.method} ${ctx.path} ${scheme}`);
    await next();
  });
}

provider.listen(port, "127.0.0.1", () => {
  console.log(`ready ${issuer}`);
});

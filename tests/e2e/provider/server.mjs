// OpenID provider for the template's end-to-end tests. TEST-ONLY: never use this anywhere else.
//
// Built on panva's oidc-provider with its in-memory storage and development signing keys (the keys are
// the same on every start; clients, sessions and grants are lost when the process stops).
//
// Environment:
//   PORT               port to listen on (127.0.0.1 only), required
//   ISSUER             e.g. http://127.0.0.1:PORT, no trailing slash (default: that)
//   ACCESS_TOKEN_TTL   seconds, default 300
//   ID_TOKEN_TTL       seconds, default 300
//   REFRESH_TOKEN_TTL  seconds, default 86400
//
// Clients register themselves with Dynamic Client Registration (POST /reg, no initial access token).
// OpenID Connect Front-Channel Logout 1.0 is emulated (oidc-provider 9 dropped it): clients may
// register `frontchannel_logout_uri`, and the end_session confirmation frames it; see below.
// Test-only routes: GET /__test/health, POST /__test/logout {"sub": "...", "client_id"?: "..."},
// and per account (any login id: tests pick their own, so they can share one provider):
//   POST /__test/account {"sub", "access_token_ttl"?, "refresh_delay_ms"?}: how tokens are issued
//   GET  /__test/account?sub=...: token grants and errors so far, revoked and live grants
//   POST /__test/revoke-grants {"sub"}: revoke its grants (as an administrator would), send nothing
// Prints "ready <issuer>" on stdout once it accepts connections.

import http from 'node:http';

import Provider, { errors } from 'oidc-provider';

const HOST = '127.0.0.1';
const PORT = Number(requiredEnv('PORT'));
const ISSUER = process.env.ISSUER ?? `http://${HOST}:${PORT}`;
const ACCESS_TOKEN_TTL = secondsEnv('ACCESS_TOKEN_TTL', 300);
const ID_TOKEN_TTL = secondsEnv('ID_TOKEN_TTL', 300);
const REFRESH_TOKEN_TTL = secondsEnv('REFRESH_TOKEN_TTL', 86400);

// Scopes an API resource (RFC 8707 `resource` parameter, like Auth0's `audience`) may be granted.
const API_SCOPES = 'read:items write:items';

function requiredEnv(name) {
  const value = process.env[name];
  if (!value) {
    console.error(`missing environment variable ${name}`);
    process.exit(2);
  }
  return value;
}

function secondsEnv(name, fallback) {
  const value = Number(process.env[name] ?? fallback);
  if (!Number.isInteger(value) || value <= 0) {
    console.error(`${name} must be a positive number of seconds`);
    process.exit(2);
  }
  return value;
}

// Any login id is an account: "alice" -> sub alice, name Alice, email alice@example.com.
async function findAccount(_ctx, id) {
  return {
    accountId: id,
    async claims() {
      return {
        sub: id,
        name: id.charAt(0).toUpperCase() + id.slice(1),
        email: `${id}@example.com`,
        email_verified: true,
      };
    },
  };
}

// Any https:// identifier is a known API (permissive on purpose); its access tokens are JWTs.
async function getResourceServerInfo(_ctx, resourceIndicator) {
  if (!URL.canParse(resourceIndicator) || new URL(resourceIndicator).protocol !== 'https:') {
    throw new errors.InvalidTarget();
  }
  return {
    audience: resourceIndicator,
    scope: API_SCOPES,
    accessTokenFormat: 'jwt',
    accessTokenTTL: ACCESS_TOKEN_TTL,
    jwt: { sign: { alg: 'RS256' } },
  };
}

// Front-Channel Logout 1.0, section 2: `frontchannel_logout_uri` is an http(s) URL with the scheme,
// host and port of one of the client's redirect URIs; `frontchannel_logout_session_required`
// (whether the RP wants `iss` and `sid` in it) is a boolean, false if omitted.
function validateFrontchannelMetadata(_ctx, key, value, metadata) {
  if (key === 'frontchannel_logout_session_required') {
    if (value === undefined) metadata[key] = false;
    else if (typeof value !== 'boolean') {
      throw new errors.InvalidClientMetadata(`${key} must be a boolean`);
    }
    return;
  }
  if (value === undefined) return;
  if (typeof value !== 'string' || !URL.canParse(value)
    || !['http:', 'https:'].includes(new URL(value).protocol)) {
    throw new errors.InvalidClientMetadata(`${key} must be an http(s) URL`);
  }
  const { origin } = new URL(value);
  const redirectOrigins = (metadata.redirect_uris ?? [])
    .filter((uri) => URL.canParse(uri)).map((uri) => new URL(uri).origin);
  if (!redirectOrigins.includes(origin)) {
    throw new errors.InvalidClientMetadata(
      `${key} must have the scheme, host and port of a redirect_uri`,
    );
  }
}

// TEST-ONLY per-account settings: {accessTokenTtl?, refreshDelayMs?}; see POST /__test/account.
const accountSettings = new Map();

const configuration = {
  findAccount,
  scopes: ['openid', 'profile', 'email', 'offline_access'],
  claims: {
    openid: ['sub'],
    profile: ['name'],
    email: ['email', 'email_verified'],
  },
  conformIdTokenClaims: false, // scope claims go into the ID token too, not only to userinfo
  clientDefaults: {
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
  },
  pkce: { required: () => true }, // S256 is the only method oidc-provider 9 supports
  // Refresh tokens come with offline_access, and for confidential clients always. They are rotated
  // on every use; reusing a spent one gets invalid_grant and revokes the whole grant (reuse detection).
  issueRefreshToken: async (_ctx, client, source) => client.grantTypeAllowed('refresh_token')
    && (source.scopes.has('offline_access') || client.clientAuthMethod !== 'none'),
  rotateRefreshToken: true,
  ttl: {
    AccessToken: (_ctx, token) => accountSettings.get(token.accountId)?.accessTokenTtl
      ?? token.resourceServer?.accessTokenTTL ?? ACCESS_TOKEN_TTL,
    IdToken: ID_TOKEN_TTL,
    RefreshToken: REFRESH_TOKEN_TTL,
    Grant: REFRESH_TOKEN_TTL,
    Session: 24 * 3600,
    Interaction: 600,
  },
  cookies: { keys: ['test-only-cookie-signing-key'] },
  // Front-Channel Logout 1.0, emulated (see frontchannelLogout below): metadata and discovery.
  extraClientMetadata: {
    properties: ['frontchannel_logout_uri', 'frontchannel_logout_session_required'],
    validator: validateFrontchannelMetadata,
  },
  discovery: {
    frontchannel_logout_supported: true,
    frontchannel_logout_session_supported: true,
  },
  features: {
    devInteractions: { enabled: true }, // login form: any login and password
    registration: { enabled: true, initialAccessToken: false },
    rpInitiatedLogout: { enabled: true },
    backchannelLogout: { enabled: true },
    revocation: { enabled: true },
    userinfo: { enabled: true },
    resourceIndicators: {
      enabled: true,
      getResourceServerInfo,
      useGrantedResource: async () => true,
    },
  },
  // TEST-ONLY: oidc-provider guards its outgoing requests (back-channel logout) against special-use
  // addresses such as 127.0.0.1 by passing its own dispatcher. The receivers in tests are on loopback.
  fetch: (url, { dispatcher: _ssrfGuard, ...options }) => fetch(url, options),
};

const provider = new Provider(ISSUER, configuration);

// Session id -> account id of every session saved, so /__test/logout can find an account's sessions.
// Entries may be stale (sessions get new ids, expire); Session.find tells.
const sessionAccounts = new Map();
provider.on('session.saved', (session) => {
  if (session.accountId) sessionAccounts.set(session.jti, session.accountId);
});
provider.on('session.destroyed', (session) => sessionAccounts.delete(session.jti));
provider.on('backchannel.error', (_ctx, error, client) => {
  console.error(`back-channel logout to ${client.clientId} failed: ${error.message}`);
});

// TEST-ONLY statistics per account, from the provider's events. Token requests count by grant type;
// errors by grant type and error code; revoked grants by the route that revoked them ("revocation":
// RFC 7009, "token": refresh token reuse detection). A failed request is counted for the account of
// its refresh token even when the token is gone (revoked), so the token values are remembered.
const accountStats = new Map();
const grantAccounts = new Map(); // grant id -> account id
const refreshTokenAccounts = new Map(); // refresh token value -> account id

function statsOf(accountId) {
  let stats = accountStats.get(accountId);
  if (!stats) {
    stats = { token_grants: {}, token_errors: {}, revoked_grants: {} };
    accountStats.set(accountId, stats);
  }
  return stats;
}

function increment(counter, key) {
  counter[key] = (counter[key] ?? 0) + 1;
}

function tokenRequestAccount(ctx) {
  return ctx.oidc?.account?.accountId
    ?? ctx.oidc?.entities?.RefreshToken?.accountId
    ?? refreshTokenAccounts.get(ctx.oidc?.params?.refresh_token);
}

provider.on('grant.saved', (grant) => grantAccounts.set(grant.jti, grant.accountId));
provider.on('refresh_token.saved', (token) => refreshTokenAccounts.set(token.jti, token.accountId));
provider.on('grant.success', (ctx) => {
  const accountId = tokenRequestAccount(ctx);
  if (accountId) increment(statsOf(accountId).token_grants, ctx.oidc.params.grant_type);
});
provider.on('grant.error', (ctx, error) => {
  const accountId = tokenRequestAccount(ctx);
  if (!accountId) return;
  const errors = statsOf(accountId).token_errors;
  const grantType = ctx.oidc?.params?.grant_type ?? 'unknown';
  errors[grantType] ??= {};
  increment(errors[grantType], error.error ?? 'server_error');
});
provider.on('grant.revoked', (ctx, grantId) => {
  const accountId = grantAccounts.get(grantId);
  if (accountId) increment(statsOf(accountId).revoked_grants, ctx.oidc?.route ?? 'unknown');
});

// TEST-ONLY: a slow token endpoint for refresh grants of accounts with a refreshDelayMs. The delay
// comes after the grant is done and before the answer is sent (a slow network back to the client).
provider.use(async (ctx, next) => {
  await next();
  if (ctx.oidc?.route !== 'token' || ctx.oidc.params?.grant_type !== 'refresh_token') return;
  const delay = accountSettings.get(tokenRequestAccount(ctx))?.refreshDelayMs;
  if (delay) await new Promise((resolve) => { setTimeout(resolve, delay); });
});

// OpenID Connect Front-Channel Logout 1.0, section 4, emulated: when the user confirms logout at
// the end_session endpoint (POST /session/end/confirm, RP-initiated logout), the provider's answer
// is a page that frames the `frontchannel_logout_uri` of every client logged out (all clients of
// the session with "Yes, sign me out", else the one the request named), with `iss` and `sid` for
// the clients that registered `frontchannel_logout_session_required`, and then goes on to where
// the provider would have redirected (the post_logout_redirect_uri, or its "signed out" page).
// Without such a client the provider's own 303 stays as it is.
const END_SESSION_CONFIRM = provider.pathFor('end_session_confirm');

// An RP that wants `sid` in its front-channel logout URI needs it in its ID tokens too (section 3),
// to know which of its sessions to end; oidc-provider 9 adds it for back-channel clients only.
const includeSid = provider.Client.prototype.includeSid;
provider.Client.prototype.includeSid = function includeSidForFrontchannel() {
  return includeSid.call(this)
    || Boolean(this.frontchannel_logout_uri && this.frontchannel_logout_session_required);
};

const HTML_ENTITIES = {
  '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;',
};

function htmlEscape(text) {
  return text.replace(/[&<>"']/g, (char) => HTML_ENTITIES[char]);
}

async function frontchannelLogoutUrls(session, loggedOutClientIds) {
  const urls = [];
  for (const clientId of loggedOutClientIds) {
    const client = await provider.Client.find(clientId).catch(() => undefined);
    // Extra metadata keeps its snake_case name on the client (recognized metadata is camelCase).
    if (!client?.frontchannel_logout_uri) continue;
    const url = new URL(client.frontchannel_logout_uri);
    const sid = session.authorizations?.[clientId]?.sid;
    if (client.frontchannel_logout_session_required && sid) {
      url.searchParams.set('iss', ISSUER);
      url.searchParams.set('sid', sid);
    }
    urls.push(url.href);
  }
  return urls;
}

// The page goes on once every frame has loaded (the window's load event waits for its iframes), or
// after 5 s if one hangs; its link is the same for a person without JavaScript.
function frontchannelLogoutPage(frameUrls, continueTo) {
  const frames = frameUrls.map((url) => `<iframe src="${htmlEscape(url)}" title="Signing out" `
    + 'width="0" height="0" style="border:0"></iframe>').join('\n    ');
  return `<!DOCTYPE html>
<html>
  <head>
    <meta charset="utf-8">
    <title>Signing out</title>
  </head>
  <body>
    <p>Signing you out of your applications&hellip;
      <a id="continue" href="${htmlEscape(continueTo)}">Continue</a></p>
    ${frames}
    <script>
      let leaving = false;
      const next = () => {
        if (!leaving) window.location.replace(document.getElementById('continue').href);
        leaving = true;
      };
      window.addEventListener('load', next);
      setTimeout(next, 5000);
    </script>
  </body>
</html>
`;
}

provider.use(async function frontchannelLogout(ctx, next) {
  if (ctx.method !== 'POST' || ctx.path !== END_SESSION_CONFIRM) {
    await next();
    return;
  }
  // The session as it was before the handler destroys it (or drops the client's authorization).
  const session = await provider.Session.get(ctx);
  await next();
  if (ctx.oidc?.route !== 'end_session_confirm' || ctx.status !== 303) return; // e.g. bad xsrf

  const clientId = session.state?.clientId;
  const loggedOut = ctx.oidc.params.logout
    ? Object.keys(session.authorizations ?? {})
    : [clientId].filter((id) => id && session.authorizations?.[id]);
  const frameUrls = await frontchannelLogoutUrls(session, loggedOut);
  if (!frameUrls.length) return;

  const location = ctx.response.get('location');
  ctx.remove('location');
  ctx.status = 200;
  ctx.type = 'html';
  ctx.body = frontchannelLogoutPage(frameUrls, location);
});

async function liveGrantsOf(accountId) {
  const grantIds = [...grantAccounts].filter(([, owner]) => owner === accountId).map(([id]) => id);
  const grants = await Promise.all(grantIds.map((id) => provider.Grant.find(id)));
  return grantIds.filter((_id, index) => grants[index]);
}

async function accountReport(sub) {
  const live = await liveGrantsOf(sub);
  return { sub, ...statsOf(sub), live_grants: live.length };
}

class BadRequest extends Error {}

function configureAccount({ sub, access_token_ttl: ttl, refresh_delay_ms: delay }) {
  const settings = accountSettings.get(sub) ?? {};
  if (ttl !== undefined) {
    if (ttl !== null && !(Number.isInteger(ttl) && ttl > 0)) {
      throw new BadRequest('access_token_ttl must be a positive integer or null');
    }
    settings.accessTokenTtl = ttl ?? undefined;
  }
  if (delay !== undefined) {
    if (delay !== null && !(Number.isInteger(delay) && delay >= 0)) {
      throw new BadRequest('refresh_delay_ms must be a non-negative integer or null');
    }
    settings.refreshDelayMs = delay ?? undefined;
  }
  accountSettings.set(sub, settings);
  return {
    sub,
    access_token_ttl: settings.accessTokenTtl ?? null,
    refresh_delay_ms: settings.refreshDelayMs ?? 0,
  };
}

async function sessionsOf(accountId) {
  const sessions = [];
  for (const [id, owner] of sessionAccounts) {
    if (owner !== accountId) continue;
    const session = await provider.Session.find(id);
    if (session) sessions.push(session);
    else sessionAccounts.delete(id);
  }
  return sessions;
}

// Ends the grant like RP-initiated logout does: tokens of the grant are gone, offline_access ones stay.
async function revokeGrant(grantId) {
  await Promise.all([
    provider.AccessToken.revokeByGrantId(grantId),
    provider.RefreshToken.revokeByGrantId(grantId),
    provider.AuthorizationCode.revokeByGrantId(grantId),
  ]);
  const grant = await provider.Grant.find(grantId);
  await grant?.destroy();
}

async function sendBackchannelLogout(client, accountId, sid) {
  try {
    await client.backchannelLogout(accountId, sid);
    return { client_id: client.clientId, ok: true };
  } catch (error) {
    return {
      client_id: client.clientId,
      ok: false,
      status: error.response?.status ?? null,
      error: error.message,
    };
  }
}

// TEST-ONLY: ends every provider session of `sub` (or only its authorization for `client_id`) and sends
// the real back-channel logout tokens, as the end_session endpoint would for a user choosing "log out".
async function logoutAccount({ sub, client_id: onlyClientId }) {
  const sent = [];
  for (const session of await sessionsOf(sub)) {
    const authorizations = session.authorizations ?? {};
    const clientIds = Object.keys(authorizations)
      .filter((clientId) => !onlyClientId || clientId === onlyClientId);
    if (onlyClientId && !clientIds.length) continue;

    for (const clientId of clientIds) {
      const { sid, grantId, persistsLogout } = authorizations[clientId];
      const client = await provider.Client.find(clientId);
      if (client?.backchannelLogoutUri) {
        sent.push(await sendBackchannelLogout(client, sub, sid));
      }
      if (grantId && !persistsLogout) await revokeGrant(grantId);
      delete authorizations[clientId];
    }

    if (Object.keys(authorizations).length) await session.persist();
    else await session.destroy();
  }
  return { sub, backchannel: sent };
}

function sendJson(res, status, body) {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  res.end(JSON.stringify(body));
}

async function readJson(req) {
  let text = '';
  for await (const chunk of req) text += chunk;
  return JSON.parse(text || '{}');
}

// TEST-ONLY: revokes every grant of `sub` (its tokens stop working), as an administrator would.
async function revokeGrantsOf({ sub }) {
  const grantIds = await liveGrantsOf(sub);
  await Promise.all(grantIds.map(revokeGrant));
  return { sub, revoked: grantIds.length };
}

const postRoutes = new Map([
  ['/__test/logout', logoutAccount],
  ['/__test/account', configureAccount],
  ['/__test/revoke-grants', revokeGrantsOf],
]);

// TEST-ONLY routes under /__test/; everything else is the OpenID provider.
async function handleTestRoute(req, res) {
  const { pathname, searchParams } = new URL(req.url, ISSUER);
  if (req.method === 'GET' && pathname === '/__test/health') {
    sendJson(res, 200, { status: 'ok', issuer: ISSUER });
  } else if (req.method === 'GET' && pathname === '/__test/account') {
    const sub = searchParams.get('sub');
    if (!sub) {
      sendJson(res, 400, { error: 'sub is required' });
      return;
    }
    sendJson(res, 200, await accountReport(sub));
  } else if (req.method === 'POST' && postRoutes.has(pathname)) {
    let body;
    try {
      body = await readJson(req);
    } catch {
      sendJson(res, 400, { error: 'body must be JSON' });
      return;
    }
    if (typeof body.sub !== 'string' || !body.sub) {
      sendJson(res, 400, { error: 'sub is required' });
      return;
    }
    try {
      sendJson(res, 200, await postRoutes.get(pathname)(body));
    } catch (error) {
      if (!(error instanceof BadRequest)) throw error;
      sendJson(res, 400, { error: error.message });
    }
  } else {
    sendJson(res, 404, { error: 'no such test route' });
  }
}

const providerCallback = provider.callback();
const server = http.createServer((req, res) => {
  if (req.url.startsWith('/__test/')) {
    handleTestRoute(req, res).catch((error) => {
      console.error(error);
      if (!res.headersSent) sendJson(res, 500, { error: String(error) });
    });
  } else {
    providerCallback(req, res);
  }
});

server.listen(PORT, HOST, () => console.log(`ready ${ISSUER}`));

process.on('SIGTERM', () => {
  server.close(() => process.exit(0));
  server.closeAllConnections();
});

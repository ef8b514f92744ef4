// node-oidc-provider configured like the Grantline benchmark instance, for side-by-side load.
//
// PAR required, PKCE (S256) required for every client, a client_secret_basic client and a
// private_key_jwt client, ES256 JWT access tokens (RFC 9068 shape) with a refresh token,
// introspection, consent asked on every authorization (Grantline shows consent each time),
// and the library's own in-memory adapter. Login and consent pages are ours (below): minimal
// HTML forms, the shape a real deployment would render.
//
// Environment: PORT; WORKERS (default 1; above 1, node:cluster workers share the port, each
// with its own in-memory store, so only stateless-per-request scenarios work across them);
// BENCH_CONFIG, a JSON file written by the suite: {clients, signing_key, username, password}.
import cluster from 'node:cluster';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';

import Provider from 'oidc-provider';

const port = Number(process.env.PORT);
const workers = Number(process.env.WORKERS || '1');
const issuer = `http://127.0.0.1:${port}`;
const bench = JSON.parse(readFileSync(process.env.BENCH_CONFIG, 'utf8'));
const SCOPES = ['inbox.read', 'invoices.pay', 'deployments.write'];
const OPAQUE_RESOURCE = 'https://opaque.bench.example/';
const MAX_FORM_BYTES = 64 * 1024;

function configuration() {
  return {
    clients: bench.clients,
    jwks: { keys: [bench.signing_key] },
    // wrk's Lua API shows one value per header name, so the load script cannot read the
    // several Set-Cookie headers sent in one response; unsigned cookies let it rebuild the
    // interaction cookies from the uid in the redirect, which is all they hold.
    cookies: { long: { signed: false }, short: { signed: false } },
    features: {
      devInteractions: { enabled: false },
      introspection: { enabled: true },
      pushedAuthorizationRequests: { enabled: true, requirePushedAuthorizationRequests: true },
      revocation: { enabled: true },
      resourceIndicators: {
        enabled: true,
        // Like Grantline: no resource parameter means the issuer is the audience.
        defaultResource: () => issuer,
        useGrantedResource: () => true,
        // JWT access tokens like Grantline's, except for OPAQUE_RESOURCE: the provider
        // refuses to introspect JWT access tokens, so the introspection load asks about an
        // opaque one (stored, looked up by value, as Grantline looks up its digest).
        getResourceServerInfo: (ctx, resource) => (resource === OPAQUE_RESOURCE
          ? {
            scope: SCOPES.join(' '), audience: resource, accessTokenTTL: 600, accessTokenFormat: 'opaque',
          }
          : {
            scope: SCOPES.join(' '),
            audience: issuer,
            accessTokenTTL: 600,
            accessTokenFormat: 'jwt',
            jwt: { sign: { alg: 'ES256' } },
          }),
      },
    },
    pkce: { required: () => true },
    responseTypes: ['code'],
    scopes: SCOPES,
    clientAuthMethods: ['client_secret_basic', 'private_key_jwt'],
    ttl: {
      PushedAuthorizationRequest: 60,
      AuthorizationCode: 60,
      AccessToken: 600,
      RefreshToken: 14 * 24 * 3600,
      Interaction: 600,
      Session: 12 * 3600,
      Grant: 14 * 24 * 3600,
    },
    issueRefreshToken: async (ctx, client) => client.grantTypeAllowed('refresh_token'),
    // Grantline asks for consent on every authorization: only the grant the person has just
    // given counts, never one remembered from an earlier authorization in the session.
    loadExistingGrant: async (ctx) => {
      const grantId = ctx.oidc.result?.consent?.grantId;
      return grantId ? ctx.oidc.provider.Grant.find(grantId) : undefined;
    },
    interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
    findAccount: async (ctx, sub) => ({ accountId: sub, claims: async () => ({ sub }) }),
  };
}

function escapeHtml(text) {
  return String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function page(res, status, body) {
  res.statusCode = status;
  res.setHeader('Content-Type', 'text/html; charset=utf-8');
  res.setHeader('Cache-Control', 'no-store');
  res.end(`<!doctype html><html><head><title>Sign in</title></head><body>${body}</body></html>`);
}

async function readForm(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > MAX_FORM_BYTES) throw new Error('form too large');
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

async function consent(provider, details) {
  const { prompt: { details: missing }, params, session } = details;
  const grant = new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
  if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
  if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
  for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes || {})) {
    grant.addResourceScope(indicator, scopes.join(' '));
  }
  return { consent: { grantId: await grant.save() } };
}

async function interaction(provider, req, res) {
  const details = await provider.interactionDetails(req, res);
  const { uid, prompt, params } = details;
  const action = req.url.split('?')[0];
  if (req.method === 'GET' && action === `/interaction/${uid}`) {
    if (prompt.name === 'login') {
      return page(res, 200, `<h1>Sign in to ${escapeHtml(params.client_id)}</h1>`
        + `<form method="post" action="/interaction/${uid}/login">`
        + '<input name="username"><input name="password" type="password">'
        + '<button type="submit">Sign in</button></form>');
    }
    const scopes = String(params.scope || '').split(' ').filter(Boolean);
    return page(res, 200, `<h1>${escapeHtml(params.client_id)} asks to</h1><ul>`
      + scopes.map((s) => `<li>${escapeHtml(s)}</li>`).join('')
      + `</ul><form method="post" action="/interaction/${uid}/confirm">`
      + `<input type="hidden" name="uid" value="${uid}">`
      + '<button type="submit" name="decision" value="approve">Approve</button>'
      + '<button type="submit" name="decision" value="deny">Deny</button></form>');
  }
  if (req.method === 'POST' && action === `/interaction/${uid}/login` && prompt.name === 'login') {
    const form = await readForm(req);
    // One benchmark account; the suite signs in before the measured runs.
    if (form.get('username') !== bench.username || form.get('password') !== bench.password) {
      return page(res, 400, 'Wrong username or password.');
    }
    const result = { login: { accountId: bench.username } };
    return provider.interactionFinished(req, res, result, { mergeWithLastSubmission: false });
  }
  if (req.method === 'POST' && action === `/interaction/${uid}/confirm` && prompt.name === 'consent') {
    const form = await readForm(req);
    const result = form.get('decision') === 'approve'
      ? await consent(provider, details)
      : { error: 'access_denied', error_description: 'The request was denied.' };
    // Not merged with the login result: a merged login would start a new session (new id)
    // on every authorization, where a signed-in person keeps theirs.
    return provider.interactionFinished(req, res, result, { mergeWithLastSubmission: false });
  }
  return page(res, 400, 'Unexpected interaction step.');
}

function serve() {
  const provider = new Provider(issuer, configuration());
  const handler = provider.callback();
  createServer((req, res) => {
    if (!req.url.startsWith('/interaction/')) return handler(req, res);
    return interaction(provider, req, res).catch((err) => {
      if (!res.headersSent) page(res, 400, escapeHtml(err.message));
      else res.end();
    });
  }).listen(port, '127.0.0.1');
}

if (workers > 1 && cluster.isPrimary) {
  for (let i = 0; i < workers; i += 1) cluster.fork();
  cluster.on('exit', (worker, code, signal) => {
    if (signal !== 'SIGTERM') process.exitCode = 1;
  });
  process.on('SIGTERM', () => {
    for (const worker of Object.values(cluster.workers)) worker.process.kill('SIGTERM');
  });
} else {
  serve();
}

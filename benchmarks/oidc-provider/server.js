// node-oidc-provider configured like the Grantline benchmark instance, for side-by-side load.
//
// PAR required, PKCE (S256) required for every client, a client_secret_basic client and a
// private_key_jwt client, ES256 JWT access tokens (RFC 9068 shape) with a refresh token,
// introspection, consent asked on every authorization (Grantline shows consent each time).
// Login and consent pages are ours (below): minimal HTML forms, the shape a real deployment
// would render. State goes to the library's own in-memory adapter, or to the SQLite adapter
// below (ours, on Node's built-in node:sqlite).
//
// Environment: PORT; WORKERS (default 1; above 1, node:cluster workers share the port);
// ADAPTER, "memory" (the default: each process has its own store, so across cluster workers
// only stateless-per-request scenarios work) or "sqlite" (every worker shares the file
// SQLITE_PATH, created when missing); BENCH_CONFIG, a JSON file written by the suite:
// {clients, signing_key, username, password}.
import cluster from 'node:cluster';
import { readFileSync, realpathSync } from 'node:fs';
import { createServer } from 'node:http';
import { fileURLToPath } from 'node:url';

import Provider from 'oidc-provider';

const SCOPES = ['inbox.read', 'invoices.pay', 'deployments.write'];
const OPAQUE_RESOURCE = 'https://opaque.bench.example/';
const MAX_FORM_BYTES = 64 * 1024;
// The library's default, set here so that the SQLite adapter keeps entries exactly as long
// as the provider would still accept them.
const CLOCK_TOLERANCE = 15;

// -- SQLite adapter --------------------------------------------------------------------------
//
// oidc-provider's adapter interface over one table: a row per (model, id) holding the payload
// as JSON and when it expires (ms since the epoch; NULL for never), plus the three values the
// provider looks entries up by besides their id: a Session's uid, a userCode, and the grantId
// of the grant-bound tokens (revoked together). Every statement commits on its own, in WAL
// mode with synchronous=NORMAL (Grantline's settings) and a 5 s busy timeout, so the workers
// of a cluster share one file. Expired rows are never returned; deleting them is a sweep
// (pruneExpired) run when the server starts, as Grantline leaves its own to `grantline db
// prune`.

const SQLITE_BUSY_TIMEOUT_MS = 5000;

// The models whose entries carry the grantId that revokeByGrantId removes them by (the set
// the library's in-memory adapter indexes).
const GRANT_BOUND = new Set([
  'AccessToken',
  'AuthorizationCode',
  'RefreshToken',
  'DeviceCode',
  'BackchannelAuthenticationRequest',
  'PreAuthorizedCode',
]);

const SCHEMA = `
CREATE TABLE IF NOT EXISTS oidc_entries (
  model TEXT NOT NULL,
  id TEXT NOT NULL,
  payload TEXT NOT NULL,
  grant_id TEXT,
  user_code TEXT,
  uid TEXT,
  expires_at INTEGER,
  PRIMARY KEY (model, id)
);
CREATE INDEX IF NOT EXISTS oidc_entries_grant_id ON oidc_entries (grant_id)
  WHERE grant_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS oidc_entries_uid ON oidc_entries (model, uid)
  WHERE uid IS NOT NULL;
CREATE INDEX IF NOT EXISTS oidc_entries_user_code ON oidc_entries (model, user_code)
  WHERE user_code IS NOT NULL;
CREATE INDEX IF NOT EXISTS oidc_entries_expires_at ON oidc_entries (expires_at)
  WHERE expires_at IS NOT NULL;
`;

const LIVE = '(expires_at IS NULL OR expires_at > ?)';

async function openSqlite(path) {
  // Imported only when asked for: node:sqlite is unflagged from Node 22.13 on.
  const { DatabaseSync } = await import('node:sqlite');
  const db = new DatabaseSync(path);
  // The busy timeout first: a second worker may be writing already.
  db.exec(`PRAGMA busy_timeout = ${SQLITE_BUSY_TIMEOUT_MS}`);
  db.exec('PRAGMA journal_mode = WAL');
  db.exec('PRAGMA synchronous = NORMAL');
  return db;
}

export function pruneExpired(db, now = Date.now()) {
  return Number(db.prepare('DELETE FROM oidc_entries WHERE expires_at <= ?').run(now).changes);
}

// Creates the table and its indexes when missing and sweeps expired entries; run once, before
// any worker starts, so that the workers never race to create the schema.
export async function prepareSqlite(path) {
  const db = await openSqlite(path);
  try {
    db.exec(SCHEMA);
    pruneExpired(db);
  } finally {
    db.close();
  }
}

class SqliteAdapter {
  constructor(model, statements, clockTolerance) {
    this.model = model;
    this.statements = statements;
    this.clockTolerance = clockTolerance;
  }

  static payloadOf(found) {
    return found ? JSON.parse(found.payload) : undefined;
  }

  async upsert(id, payload, expiresIn) {
    const expiresAt = typeof expiresIn === 'number'
      ? Date.now() + (expiresIn + this.clockTolerance) * 1000
      : null;
    this.statements.upsert.run(
      this.model,
      id,
      JSON.stringify(payload),
      GRANT_BOUND.has(this.model) ? (payload.grantId ?? null) : null,
      payload.userCode ?? null,
      this.model === 'Session' ? (payload.uid ?? null) : null,
      expiresAt,
    );
  }

  async find(id) {
    return SqliteAdapter.payloadOf(this.statements.find.get(this.model, id, Date.now()));
  }

  async findByUid(uid) {
    return SqliteAdapter.payloadOf(this.statements.findByUid.get(this.model, uid, Date.now()));
  }

  async findByUserCode(userCode) {
    const found = this.statements.findByUserCode.get(this.model, userCode, Date.now());
    return SqliteAdapter.payloadOf(found);
  }

  // The provider reads `consumed` (seconds since the epoch) from the payload it finds next.
  async consume(id) {
    this.statements.consume.run(Math.floor(Date.now() / 1000), this.model, id);
  }

  async destroy(id) {
    this.statements.destroy.run(this.model, id);
  }

  // Every grant-bound entry of the grant, whichever model it is: the provider calls this for
  // each token model, and the first call removes them all, as in the library's own adapter.
  async revokeByGrantId(grantId) {
    this.statements.revokeByGrantId.run(grantId);
  }
}

// The `adapter` configuration value: a factory of one adapter per model, all sharing one
// connection (node:sqlite is synchronous: each statement runs to completion on the event loop).
export async function sqliteAdapter(path, clockTolerance = 0) {
  const db = await openSqlite(path);
  const select = (where) => db.prepare(
    `SELECT payload FROM oidc_entries WHERE model = ? AND ${where} AND ${LIVE} LIMIT 1`,
  );
  const statements = {
    upsert: db.prepare(
      'INSERT INTO oidc_entries (model, id, payload, grant_id, user_code, uid, expires_at)'
      + ' VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (model, id) DO UPDATE SET'
      + ' payload = excluded.payload, grant_id = excluded.grant_id,'
      + ' user_code = excluded.user_code, uid = excluded.uid, expires_at = excluded.expires_at',
    ),
    find: select('id = ?'),
    findByUid: select('uid = ?'),
    findByUserCode: select('user_code = ?'),
    consume: db.prepare(
      "UPDATE oidc_entries SET payload = json_set(payload, '$.consumed', ?)"
      + ' WHERE model = ? AND id = ?',
    ),
    destroy: db.prepare('DELETE FROM oidc_entries WHERE model = ? AND id = ?'),
    revokeByGrantId: db.prepare('DELETE FROM oidc_entries WHERE grant_id = ?'),
  };
  const factory = (model) => new SqliteAdapter(model, statements, clockTolerance);
  factory.close = () => db.close();
  return factory;
}

// -- the provider ----------------------------------------------------------------------------

function configuration(issuer, bench, adapter) {
  return {
    ...(adapter ? { adapter } : undefined),
    clients: bench.clients,
    clockTolerance: CLOCK_TOLERANCE,
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

async function interaction(provider, bench, req, res) {
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

function serve(port, bench, adapter) {
  const issuer = `http://127.0.0.1:${port}`;
  const provider = new Provider(issuer, configuration(issuer, bench, adapter));
  const handler = provider.callback();
  createServer((req, res) => {
    if (!req.url.startsWith('/interaction/')) return handler(req, res);
    return interaction(provider, bench, req, res).catch((err) => {
      if (!res.headersSent) page(res, 400, escapeHtml(err.message));
      else res.end();
    });
  }).listen(port, '127.0.0.1');
}

async function main() {
  const port = Number(process.env.PORT);
  const workers = Number(process.env.WORKERS || '1');
  const bench = JSON.parse(readFileSync(process.env.BENCH_CONFIG, 'utf8'));
  const store = process.env.ADAPTER || 'memory';
  if (store !== 'memory' && store !== 'sqlite') throw new Error(`unknown ADAPTER ${store}`);
  const sqlitePath = process.env.SQLITE_PATH;
  if (store === 'sqlite' && !sqlitePath) throw new Error('ADAPTER=sqlite needs SQLITE_PATH');

  if (cluster.isPrimary && store === 'sqlite') await prepareSqlite(sqlitePath);
  if (workers > 1 && cluster.isPrimary) {
    for (let i = 0; i < workers; i += 1) cluster.fork();
    cluster.on('exit', (worker, code, signal) => {
      if (signal !== 'SIGTERM') process.exitCode = 1;
    });
    process.on('SIGTERM', () => {
      for (const worker of Object.values(cluster.workers)) worker.process.kill('SIGTERM');
    });
    return;
  }
  const adapter = store === 'sqlite' ? await sqliteAdapter(sqlitePath, CLOCK_TOLERANCE) : undefined;
  serve(port, bench, adapter);
}

// Run as a program; imported (by the suite's checks), only the exports above.
if (process.argv[1] && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}

// node-oidc-provider as a side-by-side reference for bench/oidc/run.py (see README.md in this folder).
//
//   NODE_ENV=production BENCH_CLIENT_SECRET=... node server.mjs PORT [--adapter library|map|redis]
//   (redis: also BENCH_REDIS_URL, e.g. redis://127.0.0.1:6379/14, and BENCH_REDIS_PREFIX, e.g. oidcbench:RANDOM:)
//
// Listens on 127.0.0.1:PORT only. One confidential client (client_secret_basic), an RS256 key generated at
// start (never written anywhere), refresh tokens rotated at every use, an ID token in every token answer.
// The only interaction is a minimal login: /interaction/:uid logs in the fixed account "anne" and grants the
// requested scopes, so the bench logs in once and every later authorize with the session cookie answers a
// code at once (loadExistingGrant, the library's default, finds the session's grant for the client).
import { generateKeyPairSync, randomBytes, randomUUID } from 'node:crypto';
import { createServer } from 'node:http';

import Provider from 'oidc-provider';

const args = process.argv.slice(2);
const port = Number(args.find((a) => /^\d+$/.test(a)) ?? process.env.PORT);
const adapterIndex = args.indexOf('--adapter');
const adapterName = adapterIndex >= 0 ? args[adapterIndex + 1] : (process.env.BENCH_ADAPTER ?? 'library');
const clientSecret = process.env.BENCH_CLIENT_SECRET;
const redisUrl = process.env.BENCH_REDIS_URL;
const redisPrefix = process.env.BENCH_REDIS_PREFIX;
if (!port || !clientSecret || !['library', 'map', 'redis'].includes(adapterName)
    || (adapterName === 'redis' && !(redisUrl && redisPrefix))) {
  console.error('usage: BENCH_CLIENT_SECRET=... [BENCH_REDIS_URL=... BENCH_REDIS_PREFIX=...] '
    + 'node server.mjs PORT [--adapter library|map|redis]');
  process.exit(2);
}

const ACCOUNT = 'anne';
const CLIENT_ID = 'ent';
const REDIRECT = 'https://ent.bench.example.fr/oidc/callback';

// The signing key: RSA-2048, generated at each start.
const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const jwk = { ...privateKey.export({ format: 'jwk' }), kid: randomUUID(), alg: 'RS256', use: 'sig' };

// "map": a plain Map store without the library memory adapter's 1,000-entry LRU and per-grant index (an
// O(tokens of the grant) rebuild at each save). Same interface (docs: adapter model), nothing persisted.
class MapAdapter {
  static store = new Map();

  constructor(model) {
    this.model = model;
  }

  key(id) {
    return `${this.model}:${id}`;
  }

  static get(key) {
    const entry = MapAdapter.store.get(key);
    if (!entry) return undefined;
    if (entry.expiresAt && entry.expiresAt <= Date.now()) {
      MapAdapter.store.delete(key);
      return undefined;
    }
    return entry.value;
  }

  async upsert(id, payload, expiresIn) {
    const expiresAt = typeof expiresIn === 'number' ? Date.now() + expiresIn * 1000 : undefined;
    MapAdapter.store.set(this.key(id), { value: payload, expiresAt });
    if (this.model === 'Session') MapAdapter.store.set(`sessionUid:${payload.uid}`, { value: id, expiresAt });
    if (payload.userCode) MapAdapter.store.set(`userCode:${payload.userCode}`, { value: id, expiresAt });
    if (payload.grantId) {
      const grantKey = `grant:${payload.grantId}`;
      let members = MapAdapter.store.get(grantKey)?.value;
      if (!members) {
        members = new Set();
        MapAdapter.store.set(grantKey, { value: members });
      }
      members.add(this.key(id));
    }
  }

  async find(id) {
    return MapAdapter.get(this.key(id));
  }

  async findByUid(uid) {
    const id = MapAdapter.get(`sessionUid:${uid}`);
    return id ? this.find(id) : undefined;
  }

  async findByUserCode(userCode) {
    const id = MapAdapter.get(`userCode:${userCode}`);
    return id ? this.find(id) : undefined;
  }

  async consume(id) {
    const payload = MapAdapter.get(this.key(id));
    if (payload) payload.consumed = Math.floor(Date.now() / 1000);
  }

  async destroy(id) {
    const key = this.key(id);
    const payload = MapAdapter.get(key);
    MapAdapter.store.delete(key);
    if (payload?.grantId) MapAdapter.store.get(`grant:${payload.grantId}`)?.value.delete(key);
  }

  async revokeByGrantId(grantId) {
    const grantKey = `grant:${grantId}`;
    for (const key of MapAdapter.store.get(grantKey)?.value ?? []) MapAdapter.store.delete(key);
    MapAdapter.store.delete(grantKey);
  }
}

// "redis": the library's example Redis adapter (oidc-provider repository, example/adapters/redis.js, the one
// its documentation points to for production), ported as is: same keys (MODEL:id, grant:ID lists of the
// grantable models' keys, userCode:CODE, uid:UID), same commands (one MULTI per upsert with SET, or HMSET
// {payload} for the consumable models, EXPIRE, RPUSH to the grant list after a TTL read of it, SET + EXPIRE
// of the userCode and uid indexes; GET or HGETALL to find; HSET consumed to consume; DEL to destroy; LRANGE +
// MULTI DEL to revoke a grant). Only differences: ESM, the client built here (not at import), a key prefix
// unique to the run instead of 'oidc:' (run.py deletes that prefix's keys at the end), and lodash's isEmpty
// written out for the two shapes find() meets (GET's null or string, HGETALL's object).
let redis;
if (adapterName === 'redis') {
  const { default: Redis } = await import('ioredis');
  redis = new Redis(redisUrl, { keyPrefix: redisPrefix });
  redis.on('error', (err) => console.error('redis:', err.message));
}

const grantable = new Set([
  'AccessToken',
  'AuthorizationCode',
  'RefreshToken',
  'DeviceCode',
  'BackchannelAuthenticationRequest',
]);

const consumable = new Set([
  'AuthorizationCode',
  'RefreshToken',
  'DeviceCode',
  'BackchannelAuthenticationRequest',
]);

const isEmpty = (data) => data == null || (typeof data === 'string' ? data.length === 0 : Object.keys(data).length === 0);

function grantKeyFor(id) {
  return `grant:${id}`;
}

function userCodeKeyFor(userCode) {
  return `userCode:${userCode}`;
}

function uidKeyFor(uid) {
  return `uid:${uid}`;
}

class RedisAdapter {
  constructor(name) {
    this.name = name;
  }

  async upsert(id, payload, expiresIn) {
    const key = this.key(id);
    const store = consumable.has(this.name)
      ? { payload: JSON.stringify(payload) } : JSON.stringify(payload);

    const multi = redis.multi();
    multi[consumable.has(this.name) ? 'hmset' : 'set'](key, store);

    if (expiresIn) {
      multi.expire(key, expiresIn);
    }

    if (grantable.has(this.name) && payload.grantId) {
      const grantKey = grantKeyFor(payload.grantId);
      multi.rpush(grantKey, key);
      // (the example's comment: consider LTRIM here if grant key lists grow out of acceptable proportions)
      const ttl = await redis.ttl(grantKey);
      if (expiresIn > ttl) {
        multi.expire(grantKey, expiresIn);
      }
    }

    if (payload.userCode) {
      const userCodeKey = userCodeKeyFor(payload.userCode);
      multi.set(userCodeKey, id);
      multi.expire(userCodeKey, expiresIn);
    }

    if (payload.uid) {
      const uidKey = uidKeyFor(payload.uid);
      multi.set(uidKey, id);
      multi.expire(uidKey, expiresIn);
    }

    await multi.exec();
  }

  async find(id) {
    const data = consumable.has(this.name)
      ? await redis.hgetall(this.key(id))
      : await redis.get(this.key(id));

    if (isEmpty(data)) {
      return undefined;
    }

    if (typeof data === 'string') {
      return JSON.parse(data);
    }
    const { payload, ...rest } = data;
    return {
      ...rest,
      ...JSON.parse(payload),
    };
  }

  async findByUid(uid) {
    const id = await redis.get(uidKeyFor(uid));
    return this.find(id);
  }

  async findByUserCode(userCode) {
    const id = await redis.get(userCodeKeyFor(userCode));
    return this.find(id);
  }

  async destroy(id) {
    const key = this.key(id);
    await redis.del(key);
  }

  async revokeByGrantId(grantId) { // eslint-disable-line class-methods-use-this
    const multi = redis.multi();
    const tokens = await redis.lrange(grantKeyFor(grantId), 0, -1);
    tokens.forEach((token) => multi.del(token));
    multi.del(grantKeyFor(grantId));
    await multi.exec();
  }

  async consume(id) {
    await redis.hset(this.key(id), 'consumed', Math.floor(Date.now() / 1000));
  }

  key(id) {
    return `${this.name}:${id}`;
  }
}

const adapters = { map: MapAdapter, redis: RedisAdapter }; // "library": the default memory adapter
const configuration = {
  ...(adapters[adapterName] ? { adapter: adapters[adapterName] } : {}),
  clients: [{
    client_id: CLIENT_ID,
    client_secret: clientSecret,
    token_endpoint_auth_method: 'client_secret_basic',
    redirect_uris: [REDIRECT],
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    id_token_signed_response_alg: 'RS256',
  }],
  jwks: { keys: [jwk] },
  cookies: { keys: [randomBytes(32).toString('base64url')] }, // signed cookies, as in production
  scopes: ['openid', 'offline_access', 'profile'],
  claims: { openid: ['sub'], profile: ['family_name', 'given_name', 'name'] },
  async findAccount(ctx, sub) {
    return {
      accountId: sub,
      async claims() {
        return { sub, family_name: 'Banc', given_name: 'Anne', name: 'Anne Banc' };
      },
    };
  },
  // A refresh token for every code issued to a client allowed the refresh_token grant (like our registered
  // client with refresh tokens): the library's default asks for offline_access, which it drops from an
  // authorization request unless prompt=consent, i.e. an interaction at every authorize.
  issueRefreshToken: async (ctx, client) => client.grantTypeAllowed('refresh_token'),
  expiresWithSession: async () => false, // tokens outlive the browser session, like offline ones
  rotateRefreshToken: true, // a new refresh token at every use, the old one consumed
  pkce: { required: () => false }, // confidential client; bench/oidc/run.py sends no PKCE either
  clientBasedCORS: () => false,
  features: {
    devInteractions: { enabled: false },
    userinfo: { enabled: true },
  },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  ttl: {
    AccessToken: 3600,
    AuthorizationCode: 60,
    IdToken: 3600,
    RefreshToken: 14 * 24 * 3600,
    Grant: 14 * 24 * 3600,
    Session: 14 * 24 * 3600,
    Interaction: 3600,
  },
};

const provider = new Provider(`http://127.0.0.1:${port}`, configuration);

// The minimal login: no form, the fixed account logs in and the client gets the requested scopes.
async function interaction(req, res) {
  try {
    const details = await provider.interactionDetails(req, res);
    const grant = new provider.Grant({ accountId: ACCOUNT, clientId: details.params.client_id });
    grant.addOIDCScope(details.params.scope);
    const grantId = await grant.save();
    await provider.interactionFinished(req, res, {
      login: { accountId: ACCOUNT },
      consent: { grantId },
    }, { mergeWithLastSubmission: false });
  } catch (err) {
    res.statusCode = 400;
    res.end(String(err));
  }
}

const handle = provider.callback();
createServer((req, res) => {
  if (req.url.startsWith('/interaction/')) {
    interaction(req, res);
  } else {
    handle(req, res);
  }
}).listen(port, '127.0.0.1', () => {
  console.log(`node-oidc-provider listening on http://127.0.0.1:${port} (adapter: ${adapterName})`);
});

import { describe, expect, it } from 'vitest';
import { ApiClient, ApiError, buildQuery, isRetryable, RETRY_DELAYS_MS } from './api';

interface Call { url: string; init: RequestInit }

/** A fetch that answers from a script of responses (or throws for a network failure). */
function scripted(answers: (Response | Error)[]) {
  const calls: Call[] = [];
  const fetch = async (input: RequestInfo | URL, init: RequestInit = {}) => {
    calls.push({ url: String(input), init });
    const answer = answers.shift();
    if (!answer) throw new Error('no scripted answer left');
    if (answer instanceof Error) throw answer;
    return answer;
  };
  const slept: number[] = [];
  const client = new ApiClient({ fetch: fetch as typeof globalThis.fetch,
                                 sleep: async (ms) => { slept.push(ms); } });
  return { client, calls, slept };
}

function json(body: unknown, status = 200, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), {
    status, headers: { 'Content-Type': 'application/json', ...headers } });
}

const SESSION = {
  user: { id: 1, username: 'ada', is_admin: false, is_active: true, created_at: '2026-01-01T00:00:00Z',
          last_sign_in_at: null },
  auth: 'session', csrf_token: 'token-1',
};
const LABEL = { campaign_id: 3, object_id: 42, user_id: 1, value: 'accept', created_at: 'x',
                updated_at: 'x', changed: true };

function header(call: Call | undefined, name: string): string | null {
  return new Headers(call?.init.headers).get(name);
}

describe('CSRF token', () => {
  it('is sent on writes after sign-in, and not on reads', async () => {
    const { client, calls } = scripted([json(SESSION), json(LABEL), json({ items: [], next_after: null })]);
    await client.signIn('ada', 'secret-password');
    await client.writeLabel(3, 42, 'accept');
    await client.listLabels(3);
    expect(header(calls[0], 'X-CSRF-Token')).toBeNull(); // signing in needs none
    expect(header(calls[1], 'X-CSRF-Token')).toBe('token-1');
    expect(calls[1]?.init.method).toBe('PUT');
    expect(JSON.parse(String(calls[1]?.init.body))).toEqual({ value: 'accept' });
    expect(header(calls[2], 'X-CSRF-Token')).toBeNull();
  });

  it('is refreshed once when the server calls it stale, and the write is sent again', async () => {
    const stale = json({ status: 403, title: 'Forbidden',
                         detail: 'missing or wrong X-CSRF-Token header: ...' }, 403);
    const { client, calls } = scripted([stale, json({ ...SESSION, csrf_token: 'token-2' }), json(LABEL)]);
    client.csrfToken = 'token-1';
    const label = await client.writeLabel(3, 42, 'accept');
    expect(label.value).toBe('accept');
    expect(calls.map((c) => c.init.method)).toEqual(['PUT', 'GET', 'PUT']);
    expect(header(calls[2], 'X-CSRF-Token')).toBe('token-2');
  });

  it('does not loop when the refreshed token is refused too', async () => {
    const stale = () => json({ status: 403, title: 'Forbidden',
                               detail: 'missing or wrong X-CSRF-Token header' }, 403);
    const { client, calls } = scripted([stale(), json(SESSION), stale()]);
    client.csrfToken = 'old';
    await expect(client.undoLabel(3)).rejects.toMatchObject({ status: 403 });
    expect(calls).toHaveLength(3);
  });

  it('a 403 for a missing role is not taken for a stale token', async () => {
    const { client, calls } = scripted([json({ status: 403, title: 'Forbidden',
      detail: 'you are a viewer of campaign 3; to label in it you need the labeler role' }, 403)]);
    await expect(client.writeLabel(3, 1, 'reject')).rejects.toMatchObject({ status: 403 });
    expect(calls).toHaveLength(1);
  });
});

describe('errors', () => {
  it('parse the API error shape with field errors', async () => {
    const { client } = scripted([json({ status: 422, title: 'Unprocessable Content',
      detail: 'the request is not valid: see errors for each field',
      errors: { json: { name: ['Length must be between 1 and 200.'] } } }, 422)]);
    const error = await client.createCampaign({ name: '' }).catch((e) => e);
    expect(error).toBeInstanceOf(ApiError);
    expect(error.status).toBe(422);
    expect(error.title).toBe('Unprocessable Content');
    expect(error.message).toBe('the request is not valid: see errors for each field');
    expect(error.fieldMessages('name')).toEqual(['Length must be between 1 and 200.']);
    expect(error.fieldMessages('target')).toEqual([]);
  });

  it('turn a non-JSON answer into a readable error', async () => {
    const { client } = scripted([new Response('<html>Bad gateway</html>',
      { status: 500, statusText: 'Internal Server Error' })]);
    const error = await client.createCampaign({ name: 'x' }).catch((e) => e);
    expect(error.status).toBe(500);
    expect(error.detail).toBe('the server answered 500 Internal Server Error');
    expect(error.errors).toBeNull();
  });

  it('name a network failure with status 0', async () => {
    const { client } = scripted([new TypeError('Failed to fetch')]);
    const error = await client.undoLabel(1).catch((e) => e);
    expect(error.status).toBe(0);
    expect(error.detail).toContain('Failed to fetch');
  });

  it('signal a 401 to the app, except when signing in', async () => {
    const unauthorized = () => json({ status: 401, title: 'Unauthorized', detail: 'sign in first' }, 401);
    const { client } = scripted([unauthorized(), unauthorized(), unauthorized()]);
    let signalled = 0;
    client.onUnauthorized = () => { signalled++; };
    await expect(client.listCampaigns()).rejects.toMatchObject({ status: 401 });
    expect(signalled).toBe(1);
    await expect(client.signIn('ada', 'wrong')).rejects.toMatchObject({ status: 401 });
    expect(await client.whoAmI()).toBeNull();
    expect(signalled).toBe(1);
  });
});

describe('retries', () => {
  it('retry idempotent requests after network failures and 503, with back-off', async () => {
    const { client, calls, slept } = scripted([
      new TypeError('Failed to fetch'),
      json({ status: 503, title: 'Service Unavailable', detail: 'database' }, 503, { 'Retry-After': '2' }),
      json(LABEL),
    ]);
    const label = await client.writeLabel(3, 42, 'accept');
    expect(label.object_id).toBe(42);
    expect(calls).toHaveLength(3);
    expect(slept).toEqual([RETRY_DELAYS_MS[0], 2000]); // Retry-After wins over the back-off
  });

  it('give up after the last back-off step', async () => {
    const down = () => new TypeError('Failed to fetch');
    const { client, calls } = scripted([down(), down(), down()]);
    await expect(client.listCampaigns()).rejects.toMatchObject({ status: 0 });
    expect(calls).toHaveLength(RETRY_DELAYS_MS.length + 1);
  });

  it('never resend a POST, which may have taken effect', async () => {
    const { client, calls } = scripted([new TypeError('Failed to fetch')]);
    await expect(client.undoLabel(3)).rejects.toMatchObject({ status: 0 });
    expect(calls).toHaveLength(1);
  });

  it('do not retry client errors', () => {
    expect(isRetryable('PUT', new ApiError(409, 'Conflict', 'x'))).toBe(false);
    expect(isRetryable('GET', new ApiError(502, 'Bad Gateway', 'x'))).toBe(true);
    expect(isRetryable('POST', new ApiError(503, 'Service Unavailable', 'x'))).toBe(false);
  });
});

describe('requests', () => {
  it('clear a label with DELETE and undo with POST', async () => {
    const { client, calls } = scripted([json({ ...LABEL, value: null }), json([])]);
    client.csrfToken = 't';
    await client.writeLabel(3, 42, null);
    expect(await client.undoLabel(3)).toEqual([]);
    expect(calls.map((c) => [c.init.method, c.url])).toEqual([
      ['DELETE', '/api/campaigns/3/labels/42'], ['POST', '/api/campaigns/3/labels/undo']]);
  });

  it('build queries without empty values', () => {
    expect(buildQuery({ user: 'me', after: 0, value: undefined, limit: null })).toBe('?user=me&after=0');
    expect(buildQuery({})).toBe('');
  });

  it('repeat a list parameter, as the server reads lists', () => {
    expect(buildQuery({ value: ['accept', 'none'], after: 5 })).toBe('?value=accept&value=none&after=5');
    expect(buildQuery({ value: [] })).toBe('');
  });

  it('address the probe, the team and exports', async () => {
    const { client, calls } = scripted([json({ items: [], next_cursor: null }), json({}), json({}),
                                        json({}), json({}), json({})]);
    client.csrfToken = 't';
    await client.candidates(3, { limit: 48, cursor: 'c1', strategy: 'mix' });
    await client.retrainProbe(3);
    await client.consensus(3, { value: ['reject'], after: 9 });
    await client.progress(3, { window_minutes: 30 });
    await client.startExport(3, { format: 'csv', filters: { consensus: ['accept'] } });
    await client.randomObjects({ count: 1, source_type: ['DEV', 'EXP'] });
    expect(calls.map((c) => [c.init.method, c.url])).toEqual([
      ['GET', '/api/campaigns/3/candidates?limit=48&cursor=c1&strategy=mix'],
      ['POST', '/api/campaigns/3/probe/retrain'],
      ['GET', '/api/campaigns/3/consensus?value=reject&after=9'],
      ['GET', '/api/campaigns/3/progress?window_minutes=30'],
      ['POST', '/api/campaigns/3/exports'],
      ['GET', '/api/survey/random?count=1&source_type=DEV&source_type=EXP']]);
    expect(JSON.parse(String(calls[4]?.init.body)))
      .toEqual({ format: 'csv', filters: { consensus: ['accept'] } });
  });

  it('send an import as a form with the file and its options', async () => {
    const { client, calls } = scripted([json({ rows: 1 })]);
    client.csrfToken = 't';
    await client.importTable(3, { file: new Blob(['object_id\n4\n']), fileName: 'seeds.csv',
                                  into: 'labels', source: 'SLACS', value: 'reject',
                                  toleranceArcsec: 2, dryRun: true });
    expect(calls[0]?.url).toBe('/api/campaigns/3/imports');
    const form = calls[0]?.init.body as FormData;
    expect(form).toBeInstanceOf(FormData);
    expect((form.get('file') as File).name).toBe('seeds.csv');
    expect([form.get('into'), form.get('source'), form.get('value'),
            form.get('tolerance_arcsec'), form.get('dry_run')])
      .toEqual(['labels', 'SLACS', 'reject', '2', 'true']);
    expect(header(calls[0], 'Content-Type')).toBeNull(); // the browser sets the boundary
  });

  it('build cutout addresses, leaving out the default brightness', () => {
    const client = new ApiClient();
    expect(client.cutoutUrl(7)).toBe('/api/objects/7/cutout.png');
    expect(client.cutoutUrl(7, { brightness: 1 })).toBe('/api/objects/7/cutout.png');
    expect(client.cutoutUrl(7, { size: 304, brightness: 1.41 }))
      .toBe('/api/objects/7/cutout.png?size=304&brightness=1.41');
  });
});

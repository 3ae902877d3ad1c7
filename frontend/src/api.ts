/**
 * The one module that talks to the galsearch server: every request the app makes, and the
 * types of what it sends and receives (mirroring the server's schemas, /api/openapi.json).
 *
 * - Session cookies: the server sets an HttpOnly cookie at sign-in; every write made with it
 *   must repeat the session's CSRF token in the X-CSRF-Token header. The client keeps the
 *   token (from sign-in or GET /api/session) and, when a write is refused for a stale token
 *   (another tab signed in again), fetches the current one and retries that write once.
 * - Errors: every API error is `{status, title, detail}` (422 adds `errors`: location ->
 *   field -> messages); it becomes an {@link ApiError}. A request that never reached the
 *   server becomes an ApiError with status 0.
 * - Retries: idempotent requests (GET, PUT, DELETE) are retried after a network failure or a
 *   502/503/504, with back-off (honouring Retry-After); POST is never retried, since it may
 *   have taken effect. Label writes are PUT/DELETE and the server makes repeating them a no-op.
 * - 401 anywhere but sign-in calls `onUnauthorized` (the app then shows the sign-in screen).
 *
 * The error type, the retry rules and query strings are in ./http.ts (re-exported here).
 */

import type {
  Agreement, Campaign, CampaignInput, CandidatePage, ConsensusBasis, ConsensusFilter,
  ConsensusPage, Export, ExportInput, HistoryPage, ImportInput, ImportReport, Job,
  Label, LabelOwner, LabelPage, LabelSource, LabelValue, Member, ProbeRunPage, ProbeStatus,
  ProbeStrategy, Progress, RandomObjects, Role, Seed, SeedInput, Session, SurveyInfo,
  SurveyObject,
} from './schemas';
import {
  ApiError, buildQuery, CSRF_HEADER, isRetryable, isStaleCsrf, RETRY_AFTER_CAP_MS, RETRY_DELAYS_MS,
  WRITE_METHODS, type ClientOptions, type Method, type Query, type RequestOptions,
} from './http';

export type * from './schemas';
export { ApiError, buildQuery, isRetryable, RETRY_DELAYS_MS, type ClientOptions } from './http';

export const LABEL_VALUES: readonly LabelValue[] = ['accept', 'reject', 'unsure'];
export const ROLES: readonly Role[] = ['owner', 'labeler', 'viewer'];

export class ApiClient {
  csrfToken: string | null = null;
  /** Called on a 401 (the session ended); the app shows the sign-in screen. */
  onUnauthorized: (() => void) | null = null;
  private readonly baseUrl: string;
  private readonly fetchFn: typeof fetch;
  private readonly sleep: (ms: number) => Promise<void>;

  constructor(options: ClientOptions = {}) {
    this.baseUrl = options.baseUrl ?? '';
    this.fetchFn = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
    this.sleep = options.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
  }

  /** Send one request; returns the parsed JSON body (undefined for 204). */
  async request<T>(method: Method, path: string, options: RequestOptions = {}): Promise<T> {
    let csrfRefreshed = false;
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.send<T>(method, path, options);
      } catch (caught) {
        const error = caught instanceof ApiError ? caught : ApiError.network(caught);
        if (options.signal?.aborted) throw caught;
        if (!csrfRefreshed && WRITE_METHODS.has(method) && isStaleCsrf(error)) {
          csrfRefreshed = true;
          await this.whoAmI();
          if (this.csrfToken) continue;
        }
        if (error.status === 401 && path !== '/api/session') this.onUnauthorized?.();
        const delay = RETRY_DELAYS_MS[attempt];
        if (delay === undefined || !isRetryable(method, error)) throw error;
        await this.sleep(error.retryAfterS === null ? delay
          : Math.min(error.retryAfterS * 1000, RETRY_AFTER_CAP_MS));
      }
    }
  }

  private async send<T>(method: Method, path: string, options: RequestOptions): Promise<T> {
    const headers: Record<string, string> = { Accept: 'application/json' };
    const form = options.body instanceof FormData;
    // the browser writes a multipart body's Content-Type itself (with its boundary)
    if (options.body !== undefined && !form) headers['Content-Type'] = 'application/json';
    if (WRITE_METHODS.has(method) && this.csrfToken) headers[CSRF_HEADER] = this.csrfToken;
    let response: Response;
    try {
      response = await this.fetchFn(this.baseUrl + path + buildQuery(options.query), {
        method,
        headers,
        body: options.body === undefined ? undefined
          : form ? (options.body as FormData) : JSON.stringify(options.body),
        credentials: 'same-origin',
        signal: options.signal,
      });
    } catch (cause) {
      if (options.signal?.aborted) throw cause;
      throw ApiError.network(cause);
    }
    if (!response.ok) throw await ApiError.fromResponse(response);
    if (response.status === 204) return undefined as T;
    return (await response.json()) as T;
  }

  // -- session ---------------------------------------------------------------------------
  async signIn(username: string, password: string): Promise<Session> {
    const session = await this.request<Session>('POST', '/api/session',
                                                { body: { username, password } });
    this.csrfToken = session.csrf_token;
    return session;
  }

  /** The signed-in user, or null when nobody is signed in. */
  async whoAmI(): Promise<Session | null> {
    try {
      const session = await this.request<Session>('GET', '/api/session');
      this.csrfToken = session.csrf_token;
      return session;
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) {
        this.csrfToken = null;
        return null;
      }
      throw error;
    }
  }

  async signOut(): Promise<void> {
    await this.request<void>('DELETE', '/api/session');
    this.csrfToken = null;
  }

  // -- campaigns and members ------------------------------------------------------------------
  listCampaigns(): Promise<Campaign[]> {
    return this.request('GET', '/api/campaigns');
  }

  getCampaign(campaignId: number): Promise<Campaign> {
    return this.request('GET', `/api/campaigns/${campaignId}`);
  }

  createCampaign(input: CampaignInput): Promise<Campaign> {
    return this.request('POST', '/api/campaigns', { body: input });
  }

  updateCampaign(campaignId: number, changes: Partial<CampaignInput>): Promise<Campaign> {
    return this.request('PATCH', `/api/campaigns/${campaignId}`, { body: changes });
  }

  deleteCampaign(campaignId: number): Promise<void> {
    return this.request('DELETE', `/api/campaigns/${campaignId}`);
  }

  listMembers(campaignId: number): Promise<Member[]> {
    return this.request('GET', `/api/campaigns/${campaignId}/members`);
  }

  addMember(campaignId: number, username: string, role: Role): Promise<Member> {
    return this.request('POST', `/api/campaigns/${campaignId}/members`,
                        { body: { username, role } });
  }

  changeMemberRole(campaignId: number, userId: number, role: Role): Promise<Member> {
    return this.request('PATCH', `/api/campaigns/${campaignId}/members/${userId}`,
                        { body: { role } });
  }

  removeMember(campaignId: number, userId: number): Promise<void> {
    return this.request('DELETE', `/api/campaigns/${campaignId}/members/${userId}`);
  }

  // -- seeds and candidates ------------------------------------------------------------------
  listSeeds(campaignId: number): Promise<Seed[]> {
    return this.request('GET', `/api/campaigns/${campaignId}/seeds`);
  }

  /** Add a seed by object id, or by sky position (matched to the nearest object). */
  addSeed(campaignId: number, seed: SeedInput): Promise<Seed> {
    return this.request('POST', `/api/campaigns/${campaignId}/seeds`, { body: seed });
  }

  /** Add a seed from a g, r, z cutout file (FITS or .npy), embedded by the server's model. */
  uploadSeed(campaignId: number, file: Blob, fileName: string, note = ''): Promise<Seed> {
    const form = new FormData();
    form.append('file', file, fileName);
    form.append('note', note);
    return this.request('POST', `/api/campaigns/${campaignId}/seeds/upload`, { body: form });
  }

  removeSeed(campaignId: number, seedId: number): Promise<void> {
    return this.request('DELETE', `/api/campaigns/${campaignId}/seeds/${seedId}`);
  }

  /**
   * A page of objects to label, best first; `cursor`: the previous page's next_cursor;
   * `strategy`: the probe's order for this request (default: the campaign's).
   */
  candidates(campaignId: number, options: { limit?: number; cursor?: string | null;
    strategy?: ProbeStrategy | null } = {}, signal?: AbortSignal): Promise<CandidatePage> {
    return this.request('GET', `/api/campaigns/${campaignId}/candidates`, {
      query: { limit: options.limit, cursor: options.cursor, strategy: options.strategy },
      signal });
  }

  // -- labels --------------------------------------------------------------------------------
  /** Set (value) or clear (null) the caller's label on one object; answers the stored state. */
  writeLabel(campaignId: number, objectId: number, value: LabelValue | null): Promise<Label> {
    const path = `/api/campaigns/${campaignId}/labels/${objectId}`;
    return value === null ? this.request('DELETE', path)
      : this.request('PUT', path, { body: { value } });
  }

  writeLabels(campaignId: number,
              items: { object_id: number; value: LabelValue | null }[]): Promise<Label[]> {
    return this.request('POST', `/api/campaigns/${campaignId}/labels/bulk`,
                        { body: { labels: items } });
  }

  /** Revert the caller's last write in the campaign; answers the restored labels (empty:
   * nothing left to undo). */
  undoLabel(campaignId: number): Promise<Label[]> {
    return this.request('POST', `/api/campaigns/${campaignId}/labels/undo`);
  }

  listLabels(campaignId: number, options: { user?: LabelOwner; value?: LabelValue;
    after?: number; limit?: number } = {}): Promise<LabelPage> {
    return this.request('GET', `/api/campaigns/${campaignId}/labels`, { query: options });
  }

  labelHistory(campaignId: number, options: { user?: LabelOwner; object_id?: number;
    before?: number; limit?: number } = {}): Promise<HistoryPage> {
    return this.request('GET', `/api/campaigns/${campaignId}/labels/history`,
                        { query: options });
  }

  // -- objects -------------------------------------------------------------------------------
  /** An object's catalog columns, sky viewer link and most similar objects. */
  object(objectId: number, options: { neighbours?: number; mag_window?: number } = {},
         signal?: AbortSignal): Promise<SurveyObject> {
    return this.request('GET', `/api/objects/${objectId}`, { query: options, signal });
  }

  // -- the survey ------------------------------------------------------------------------------
  /** How many objects, which bands and source types, the search bundle. */
  survey(): Promise<SurveyInfo> {
    return this.request('GET', '/api/survey');
  }

  /** Objects drawn at random (without repeats) from those the filters allow. */
  randomObjects(options: { count?: number; source_type?: string[]; mag_r_min?: number;
    mag_r_max?: number } = {}): Promise<RandomObjects> {
    return this.request('GET', '/api/survey/random', { query: options });
  }

  /**
   * The address of an object's cutout PNG (an <img> loads it with the session cookie).
   * `size`: pixels (default: the survey's); `brightness`: multiplies the stretch (1: as is).
   */
  cutoutUrl(objectId: number, options: { size?: number; brightness?: number } = {}): string {
    const brightness = options.brightness === 1 ? undefined : options.brightness;
    return `${this.baseUrl}/api/objects/${objectId}/cutout.png` +
      buildQuery({ size: options.size, brightness });
  }

  // -- the probe and background jobs ---------------------------------------------------------
  /** The probe that orders the pages now, its metrics, and the latest probe job. */
  probeStatus(campaignId: number, signal?: AbortSignal): Promise<ProbeStatus> {
    return this.request('GET', `/api/campaigns/${campaignId}/probe`, { signal });
  }

  /** The probe's versions, newest first. */
  probeRuns(campaignId: number, options: { before?: number; limit?: number } = {})
    : Promise<ProbeRunPage> {
    return this.request('GET', `/api/campaigns/${campaignId}/probe/runs`, { query: options });
  }

  /** Retrain the probe now; answers the queued job. */
  retrainProbe(campaignId: number): Promise<Job> {
    return this.request('POST', `/api/campaigns/${campaignId}/probe/retrain`);
  }

  cancelJob(campaignId: number, jobId: number): Promise<Job> {
    return this.request('POST', `/api/campaigns/${campaignId}/jobs/${jobId}/cancel`);
  }

  // -- team campaigns ----------------------------------------------------------------------
  /** Voted objects in id order with their consensus; `after`: the last page's next_after. */
  consensus(campaignId: number, options: { value?: ConsensusFilter[]; basis?: ConsensusBasis;
    after?: number; limit?: number } = {}): Promise<ConsensusPage> {
    return this.request('GET', `/api/campaigns/${campaignId}/consensus`, { query: options });
  }

  /** Fleiss' kappa, and Cohen's kappa of each pair of labelers. */
  agreement(campaignId: number): Promise<Agreement> {
    return this.request('GET', `/api/campaigns/${campaignId}/agreement`);
  }

  /** Each labeler's labels and rate over the last `window_minutes`; consensus totals. */
  progress(campaignId: number, options: { window_minutes?: number } = {}): Promise<Progress> {
    return this.request('GET', `/api/campaigns/${campaignId}/progress`, { query: options });
  }

  // -- imports and exports ---------------------------------------------------------------
  /** Import a CSV or FITS table as seeds, or as labels of a named source (`dryRun`: only
   * match and report). */
  importTable(campaignId: number, input: ImportInput): Promise<ImportReport> {
    const form = new FormData();
    form.append('file', input.file, input.fileName);
    form.append('into', input.into);
    if (input.source) form.append('source', input.source);
    if (input.value) form.append('value', input.value);
    if (input.toleranceArcsec !== undefined) {
      form.append('tolerance_arcsec', String(input.toleranceArcsec));
    }
    form.append('dry_run', String(input.dryRun));
    return this.request('POST', `/api/campaigns/${campaignId}/imports`, { body: form });
  }

  /** The sources labels were imported from. */
  listSources(campaignId: number): Promise<LabelSource[]> {
    return this.request('GET', `/api/campaigns/${campaignId}/sources`);
  }

  deleteSource(campaignId: number, source: string): Promise<void> {
    return this.request('DELETE',
                        `/api/campaigns/${campaignId}/sources/${encodeURIComponent(source)}`);
  }

  /** Start an export (a background job writes the file); answers its record. */
  startExport(campaignId: number, input: ExportInput): Promise<Export> {
    return this.request('POST', `/api/campaigns/${campaignId}/exports`, { body: input });
  }

  /** The campaign's exports, newest first. */
  listExports(campaignId: number): Promise<Export[]> {
    return this.request('GET', `/api/campaigns/${campaignId}/exports`);
  }

  deleteExport(campaignId: number, exportId: number): Promise<void> {
    return this.request('DELETE', `/api/campaigns/${campaignId}/exports/${exportId}`);
  }
}

/** The app's client (same origin as the page). */
export const api = new ApiClient();

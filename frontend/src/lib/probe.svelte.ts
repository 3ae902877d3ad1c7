/**
 * A campaign's probe as the app follows it (GET /api/campaigns/{id}/probe): the version that
 * orders the candidate pages now, its metrics, and the latest probe job.
 *
 * The worker retrains the probe in the background a moment after labels change, so a screen
 * that shows the probe (the labeling grid, the active-learning panel) polls it: every second
 * while a job is queued or running, every few seconds otherwise, and slowly while the browser
 * tab is hidden. A failed poll is kept as `error` and polling goes on.
 */

import type { ApiClient, Job, ProbeRun, ProbeStatus } from '../api';

export const POLL_BUSY_MS = 1000;
export const POLL_IDLE_MS = 4000;
export const POLL_HIDDEN_MS = 30_000;
/** After a label change: look a moment later, when the server has queued the retraining. */
export const NUDGE_MS = 700;

/** Whether a job may still change something (it has not ended). */
export function jobActive(job: Job | null | undefined): boolean {
  return job?.status === 'queued' || job?.status === 'running';
}

/** How long to wait before the next poll. */
export function pollDelayMs(status: ProbeStatus | null, hidden: boolean): number {
  if (hidden) return POLL_HIDDEN_MS;
  return jobActive(status?.job) ? POLL_BUSY_MS : POLL_IDLE_MS;
}

/** A probe's cross-validated ROC AUC and precision at the top, in words for tables. */
export function probeMetrics(run: ProbeRun): { auc: string; precision: string } {
  const cv = run.metrics.cv;
  if (!cv) return { auc: '—', precision: '—' };
  return { auc: `${cv.roc_auc.toFixed(3)} ± ${cv.roc_auc_std.toFixed(3)}`,
           precision: `${(cv.precision_at_top * 100).toFixed(0)} % of top ${cv.precision_at_top_k}` };
}

/**
 * The probe version a page should follow when it is not the one that ordered it: the newest
 * version, once there is one and the page was ordered otherwise (by similarity, or an older
 * probe); null when the page is up to date.
 */
export function newerVersion(current: number | null, pageVersion: number | null | undefined)
  : number | null {
  return current !== null && current !== (pageVersion ?? null) ? current : null;
}

/** What a job is doing, in words. */
export function describeJob(job: Job): string {
  switch (job.status) {
    case 'queued':
      return `queued${job.requests > 1 ? ` (${job.requests} requests)` : ''}` +
        (job.attempts > 0 ? `, attempt ${job.attempts + 1} of ${job.max_attempts}` : '');
    case 'running':
      return `running${job.progress === null ? '' : `: ${Math.round(job.progress * 100)} %`}` +
        (job.message ? ` — ${job.message}` : '');
    case 'succeeded': {
      const version = job.result?.['version'];
      return typeof version === 'number' ? `trained version ${version}` : 'finished';
    }
    case 'failed': return `failed: ${job.error ?? 'no reason given'}`;
    case 'cancelled': return 'cancelled';
  }
}

type ProbeClient = Pick<ApiClient, 'probeStatus' | 'retrainProbe'>;

export class ProbeWatcher {
  status: ProbeStatus | null = $state(null);
  error: string | null = $state(null);

  private timer: ReturnType<typeof setTimeout> | null = null;
  private running = false;
  private controller: AbortController | null = null;

  constructor(private readonly client: ProbeClient, readonly campaignId: number,
              private readonly isHidden: () => boolean
                = () => globalThis.document?.hidden ?? false) {}

  /** The version ordering the pages now (null: none yet, pages follow similarity). */
  get version(): number | null {
    return this.status?.current?.version ?? null;
  }

  /** Whether a probe job is queued or running. */
  get busy(): boolean {
    return jobActive(this.status?.job);
  }

  /** Poll until {@link stop}; the first poll is now. */
  start(): void {
    if (this.running) return;
    this.running = true;
    void this.poll();
  }

  stop(): void {
    this.running = false;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.controller?.abort();
  }

  /** Ask now (and go on polling from here). */
  async refresh(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.controller?.abort();
    const controller = (this.controller = new AbortController());
    try {
      const status = await this.client.probeStatus(this.campaignId, controller.signal);
      if (controller.signal.aborted) return;
      this.status = status;
      this.error = null;
    } catch (error) {
      if (controller.signal.aborted) return;
      this.error = error instanceof Error ? error.message : String(error);
    }
  }

  /** Labels changed: look again shortly (the server queues a retraining), unless a look is
   * due sooner. */
  nudge(delayMs = NUDGE_MS): void {
    if (!this.running) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = null;
      if (this.running) void this.poll();
    }, delayMs);
  }

  /** Queue a retraining due at once; the job shows in `status` right away. */
  async retrain(): Promise<Job> {
    const job = await this.client.retrainProbe(this.campaignId);
    if (this.status) this.status = { ...this.status, job };
    if (this.running) void this.poll();
    return job;
  }

  private async poll(): Promise<void> {
    await this.refresh();
    if (!this.running || this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      if (this.running) void this.poll();
    }, pollDelayMs(this.status, this.isHidden()));
  }
}

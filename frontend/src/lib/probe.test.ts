import { afterEach, describe, expect, it, vi } from 'vitest';
import type { Job, ProbeRun, ProbeStatus } from '../api';
import {
  describeJob, jobActive, newerVersion, NUDGE_MS, pollDelayMs, POLL_BUSY_MS, POLL_HIDDEN_MS, POLL_IDLE_MS, probeMetrics,
  ProbeWatcher,
} from './probe.svelte';

function job(status: Job['status'], extra: Partial<Job> = {}): Job {
  return { id: 7, kind: 'probe', campaign_id: 3, status, progress: null, message: '',
           error: null, result: null, requests: 1, attempts: 0, max_attempts: 3, worker: null,
           cancel_requested: false, created_by: null, run_after: 'x', created_at: 'x',
           started_at: null, heartbeat_at: null, lease_expires_at: null, finished_at: null,
           ...extra };
}

function run(version: number, cv: ProbeRun['metrics']['cv'] = null): ProbeRun {
  return { version, created_at: 'x', job_id: 7, bundle_sha256: 'b', representation: 'prehead',
           dim: 8, C: 1, intercept: 0, n_positive: 3, n_negative: 4, n_unlabeled: 100,
           unlabeled_weight: 0.1, label_watermark: 9, metrics: { cv }, timings: {} };
}

function status(current: ProbeRun | null, latest: Job | null): ProbeStatus {
  return { strategy: 'top', unlabeled_weight: 0.1, current, label_changes_since: 0, job: latest };
}

describe('polling', () => {
  it('is fast while a job may still finish, slow while idle or hidden', () => {
    expect(pollDelayMs(status(null, job('queued')), false)).toBe(POLL_BUSY_MS);
    expect(pollDelayMs(status(null, job('running')), false)).toBe(POLL_BUSY_MS);
    expect(pollDelayMs(status(run(1), job('succeeded')), false)).toBe(POLL_IDLE_MS);
    expect(pollDelayMs(null, false)).toBe(POLL_IDLE_MS);
    expect(pollDelayMs(status(null, job('running')), true)).toBe(POLL_HIDDEN_MS);
    expect(jobActive(job('failed'))).toBe(false);
  });
});

describe('newerVersion', () => {
  it('names the probe a page should follow, or null when it follows it already', () => {
    expect(newerVersion(null, null)).toBeNull(); // no probe yet: similarity is right
    expect(newerVersion(1, null)).toBe(1); // a similarity page, and now a probe
    expect(newerVersion(1, undefined)).toBe(1);
    expect(newerVersion(3, 2)).toBe(3);
    expect(newerVersion(3, 3)).toBeNull();
  });
});

describe('words', () => {
  it('describe jobs and metrics', () => {
    expect(describeJob(job('running', { progress: 0.5, message: 'fitting' })))
      .toBe('running: 50 % — fitting');
    expect(describeJob(job('queued', { requests: 4 }))).toBe('queued (4 requests)');
    expect(describeJob(job('succeeded', { result: { version: 3 } }))).toBe('trained version 3');
    expect(describeJob(job('failed', { error: 'no rejected object yet' })))
      .toBe('failed: no rejected object yet');
    expect(probeMetrics(run(1))).toEqual({ auc: '—', precision: '—' });
    expect(probeMetrics(run(2, { C: 1, folds: 3, roc_auc: 0.91234, roc_auc_std: 0.05,
                                  precision_at_top: 0.8, precision_at_top_k: 5,
                                  roc_auc_by_c: {} })))
      .toEqual({ auc: '0.912 ± 0.050', precision: '80 % of top 5' });
  });
});

describe('ProbeWatcher', () => {
  afterEach(() => vi.useRealTimers());

  it('polls until stopped, faster while a job runs', async () => {
    vi.useFakeTimers();
    const answers = [status(null, job('running')), status(run(1), job('succeeded')),
                     status(run(1), job('succeeded'))];
    const calls: number[] = [];
    const client = {
      probeStatus: async (id: number) => { calls.push(id); return answers.shift() ?? answers[0]!; },
      retrainProbe: async () => job('queued'),
    };
    const watcher = new ProbeWatcher(client as never, 3, () => false);
    watcher.start();
    await vi.advanceTimersByTimeAsync(0);
    expect(watcher.busy).toBe(true);
    expect(watcher.version).toBeNull();
    await vi.advanceTimersByTimeAsync(POLL_BUSY_MS);
    expect(watcher.version).toBe(1);
    expect(watcher.busy).toBe(false);
    expect(calls).toEqual([3, 3]);
    await vi.advanceTimersByTimeAsync(POLL_BUSY_MS);
    expect(calls).toHaveLength(2); // idle now: the next poll waits longer
    await vi.advanceTimersByTimeAsync(POLL_IDLE_MS);
    expect(calls).toHaveLength(3);
    watcher.stop();
    await vi.advanceTimersByTimeAsync(10 * POLL_IDLE_MS);
    expect(calls).toHaveLength(3);
  });

  it('keeps polling after a failure and shows the retrained job at once', async () => {
    vi.useFakeTimers();
    let fail = true;
    let latest = job('succeeded');
    const client = {
      probeStatus: async () => {
        if (fail) throw new Error('the server could not be reached');
        return status(run(2), latest);
      },
      retrainProbe: async () => (latest = job('queued', { id: 8 })),
    };
    const watcher = new ProbeWatcher(client as never, 3, () => false);
    watcher.start();
    await vi.advanceTimersByTimeAsync(0);
    expect(watcher.error).toContain('could not be reached');
    fail = false;
    await vi.advanceTimersByTimeAsync(POLL_IDLE_MS);
    expect(watcher.error).toBeNull();
    expect(watcher.version).toBe(2);
    const queued = await watcher.retrain();
    expect(queued.id).toBe(8);
    expect(watcher.status?.job?.status).toBe('queued');
    expect(watcher.busy).toBe(true);
    await vi.advanceTimersByTimeAsync(0);
    expect(watcher.status?.job?.id).toBe(8);
    watcher.stop();
  });
});

describe('ProbeWatcher.nudge', () => {
  afterEach(() => vi.useRealTimers());

  it('looks again shortly after a label change instead of at the idle pace', async () => {
    vi.useFakeTimers();
    let calls = 0;
    const client = { probeStatus: async () => { calls += 1; return status(run(1), null); },
                     retrainProbe: async () => job('queued') };
    const watcher = new ProbeWatcher(client as never, 3, () => false);
    watcher.nudge(); // not started: nothing
    await vi.advanceTimersByTimeAsync(NUDGE_MS);
    expect(calls).toBe(0);
    watcher.start();
    await vi.advanceTimersByTimeAsync(0);
    expect(calls).toBe(1);
    watcher.nudge();
    watcher.nudge(); // debounced: one look
    await vi.advanceTimersByTimeAsync(NUDGE_MS);
    expect(calls).toBe(2);
    await vi.advanceTimersByTimeAsync(POLL_IDLE_MS - 1);
    expect(calls).toBe(2); // then the idle pace again
    await vi.advanceTimersByTimeAsync(1);
    expect(calls).toBe(3);
    watcher.stop();
  });
});

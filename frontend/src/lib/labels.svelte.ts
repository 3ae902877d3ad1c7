/**
 * The labels one user sees in a campaign: set at once on screen (optimistic), saved in order,
 * rolled back visibly when saving fails, and undone through the server.
 *
 * Writes are sent one at a time, in the order the user made them. That keeps the server's
 * history in the user's order, so "undo" (which reverts the server's newest write) always
 * reverts what the user did last; label writes take milliseconds, so the queue is never felt.
 * An undo waits in the same queue behind the writes before it.
 *
 * Each object remembers its last value confirmed by the server. When a write fails and no
 * newer write to that object is queued, the tile goes back to that value and shows the error
 * until its next successful write.
 */

import type { Label, LabelValue } from '../api';

export interface TileLabel {
  value: LabelValue | null;
  pending: boolean; // sent, not yet confirmed
  error: string | null; // why the last write was rolled back
}

/** The requests a LabelBook makes (ApiClient's). */
export interface LabelWriter {
  writeLabel(campaignId: number, objectId: number, value: LabelValue | null): Promise<Label>;
  undoLabel(campaignId: number): Promise<Label[]>;
}

export type Notify = (message: string, kind: 'info' | 'error') => void;

const VALUE_NAMES: Record<string, string> = {
  accept: 'accepted', reject: 'rejected', unsure: 'unsure', null: 'unlabeled',
};

export function describeValue(value: LabelValue | null): string {
  return VALUE_NAMES[String(value)] ?? String(value);
}

function messageOf(error: unknown): string {
  if (error && typeof error === 'object' && 'detail' in error) return String(error.detail);
  return error instanceof Error ? error.message : String(error);
}

export class LabelBook {
  /** What each tile shows, by object id (objects never labeled are absent). */
  tiles: Record<number, TileLabel> = $state({});
  /** Writes sent and not yet answered. */
  inFlight = $state(0);

  private readonly confirmed = new Map<number, LabelValue | null>();
  private readonly newestWrite = new Map<number, number>(); // object -> sequence number
  private sequence = 0;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(private readonly client: LabelWriter, readonly campaignId: number,
              private readonly notify: Notify) {}

  /** The value shown for an object (null: none). */
  valueOf(objectId: number): LabelValue | null {
    return this.tiles[objectId]?.value ?? null;
  }

  /** Record labels known to be stored (for example read with a page). */
  load(labels: readonly Label[]): void {
    for (const label of labels) {
      this.confirmed.set(label.object_id, label.value);
      if (!this.newestWrite.has(label.object_id)) {
        this.tiles[label.object_id] = { value: label.value, pending: false, error: null };
      }
    }
  }

  /**
   * Show `value` on the object now and save it.
   *
   * @returns true when saved, false when it failed and was rolled back.
   */
  async set(objectId: number, value: LabelValue | null): Promise<boolean> {
    const shown = this.tiles[objectId];
    if (shown && !shown.pending && !shown.error && shown.value === value) return true;
    if (!shown && value === null) return true;
    const sequence = ++this.sequence;
    this.newestWrite.set(objectId, sequence);
    this.tiles[objectId] = { value, pending: true, error: null };
    this.inFlight++;
    const write = this.enqueue(() => this.client.writeLabel(this.campaignId, objectId, value));
    try {
      const stored = await write;
      this.confirmed.set(objectId, stored.value);
      if (this.newestWrite.get(objectId) === sequence) {
        this.tiles[objectId] = { value: stored.value, pending: false, error: null };
      }
      return true;
    } catch (error) {
      if (this.newestWrite.get(objectId) === sequence) {
        const detail = messageOf(error);
        const restored = this.confirmed.get(objectId) ?? null;
        this.tiles[objectId] = { value: restored, pending: false, error: detail };
        this.notify(`Object ${objectId} could not be marked ${describeValue(value)}, so it is ` +
                    `back to ${describeValue(restored)}: ${detail}`, 'error');
      }
      return false;
    } finally {
      this.inFlight--;
    }
  }

  /**
   * Undo the user's last label change in the campaign (after the writes before it).
   *
   * @returns the labels it restored (empty: nothing left to undo).
   * @throws ApiError when the server refuses or cannot be reached (nothing changed then).
   */
  async undo(): Promise<Label[]> {
    const sequence = ++this.sequence;
    const restored = await this.enqueue(() => this.client.undoLabel(this.campaignId));
    for (const label of restored) {
      this.confirmed.set(label.object_id, label.value);
      // a write made after the undo was asked for is newer: it keeps the tile
      if ((this.newestWrite.get(label.object_id) ?? 0) < sequence) {
        this.tiles[label.object_id] = { value: label.value, pending: false, error: null };
      }
    }
    return restored;
  }

  /** Resolves when every write and undo asked for so far has been answered. */
  settled(): Promise<void> {
    return this.queue.then(() => undefined);
  }

  private enqueue<T>(task: () => Promise<T>): Promise<T> {
    const run = this.queue.then(task);
    this.queue = run.catch(() => undefined);
    return run;
  }
}

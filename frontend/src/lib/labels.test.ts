import { describe, expect, it } from 'vitest';
import { ApiError, type Label, type LabelValue } from '../api';
import { LabelBook, type LabelWriter } from './labels.svelte';

/** A server whose answers the test releases one by one, recording what was asked in order. */
class FakeServer implements LabelWriter {
  stored = new Map<number, LabelValue | null>();
  history: { objectId: number; old: LabelValue | null }[] = [];
  log: string[] = [];
  failNext: ApiError | null = null;
  private waiting: (() => void)[] = [];
  autoRelease = true;

  release(): void {
    this.waiting.shift()?.();
  }

  private async gate(): Promise<void> {
    if (!this.autoRelease) await new Promise<void>((resolve) => this.waiting.push(resolve));
  }

  private label(objectId: number): Label {
    return { campaign_id: 1, object_id: objectId, user_id: 9, value: this.stored.get(objectId) ?? null,
             created_at: null, updated_at: null };
  }

  async writeLabel(_campaign: number, objectId: number, value: LabelValue | null): Promise<Label> {
    this.log.push(`write ${objectId}=${value}`);
    await this.gate();
    if (this.failNext) {
      const error = this.failNext;
      this.failNext = null;
      throw error;
    }
    this.history.push({ objectId, old: this.stored.get(objectId) ?? null });
    this.stored.set(objectId, value);
    return this.label(objectId);
  }

  async undoLabel(): Promise<Label[]> {
    this.log.push('undo');
    await this.gate();
    const last = this.history.pop();
    if (!last) return [];
    this.stored.set(last.objectId, last.old);
    return [this.label(last.objectId)];
  }
}

function setup() {
  const server = new FakeServer();
  const messages: [string, string][] = [];
  const book = new LabelBook(server, 1, (message, kind) => messages.push([message, kind]));
  return { server, book, messages };
}

const flush = () => new Promise((resolve) => setTimeout(resolve, 0));

describe('LabelBook', () => {
  it('shows a label at once, pending until the server confirms it', async () => {
    const { server, book } = setup();
    server.autoRelease = false;
    const saved = book.set(5, 'accept');
    expect(book.tiles[5]).toEqual({ value: 'accept', pending: true, error: null });
    expect(book.inFlight).toBe(1);
    await flush();
    server.release();
    expect(await saved).toBe(true);
    expect(book.tiles[5]).toEqual({ value: 'accept', pending: false, error: null });
    expect(book.inFlight).toBe(0);
  });

  it('rolls a failed write back to the stored value, visibly, and says why', async () => {
    const { server, book, messages } = setup();
    await book.set(5, 'accept');
    server.failNext = new ApiError(503, 'Service Unavailable', 'the database cannot be reached');
    expect(await book.set(5, 'reject')).toBe(false);
    expect(book.tiles[5]).toEqual({ value: 'accept', pending: false,
                                    error: 'the database cannot be reached' });
    expect(messages.at(-1)?.[1]).toBe('error');
    expect(messages.at(-1)?.[0]).toContain('back to accepted');
    // the next successful write clears the error
    await book.set(5, 'unsure');
    expect(book.tiles[5]).toEqual({ value: 'unsure', pending: false, error: null });
  });

  it('rolls a first label back to no label', async () => {
    const { server, book } = setup();
    server.failNext = new ApiError(0, 'Network error', 'offline');
    await book.set(8, 'accept');
    expect(book.valueOf(8)).toBeNull();
    expect(book.tiles[8]?.error).toBe('offline');
  });

  it('sends writes one at a time, in the order they were made', async () => {
    const { server, book } = setup();
    server.autoRelease = false;
    const writes = [book.set(1, 'accept'), book.set(2, 'reject'), book.set(1, 'unsure')];
    await flush();
    expect(server.log).toEqual(['write 1=accept']); // the others wait their turn
    for (let i = 0; i < 3; i++) {
      server.release();
      await flush();
    }
    await Promise.all(writes);
    expect(server.log).toEqual(['write 1=accept', 'write 2=reject', 'write 1=unsure']);
    expect(book.valueOf(1)).toBe('unsure');
  });

  it('keeps the newest value on screen when an older write to the object fails', async () => {
    const { server, book, messages } = setup();
    server.autoRelease = false;
    const first = book.set(3, 'accept');
    const second = book.set(3, 'reject');
    await flush();
    server.failNext = new ApiError(500, 'Internal Server Error', 'boom');
    server.release();
    expect(await first).toBe(false);
    expect(book.tiles[3]).toEqual({ value: 'reject', pending: true, error: null });
    expect(messages).toEqual([]); // superseded: nothing to roll back
    server.release();
    expect(await second).toBe(true);
    expect(book.tiles[3]?.value).toBe('reject');
  });

  it('does not send a write that changes nothing', async () => {
    const { server, book } = setup();
    await book.set(4, 'accept');
    await book.set(4, 'accept');
    await book.set(6, null);
    expect(server.log).toEqual(['write 4=accept']);
  });

  it('undoes after the writes before it, and shows what the server restored', async () => {
    const { server, book } = setup();
    server.autoRelease = false;
    const a = book.set(1, 'accept');
    const b = book.set(2, 'reject');
    const undone = book.undo();
    for (let i = 0; i < 3; i++) {
      await flush();
      server.release();
    }
    await Promise.all([a, b]);
    const restored = await undone;
    expect(server.log).toEqual(['write 1=accept', 'write 2=reject', 'undo']);
    expect(restored.map((l) => [l.object_id, l.value])).toEqual([[2, null]]);
    expect(book.valueOf(2)).toBeNull();
    expect(book.valueOf(1)).toBe('accept');
  });

  it('lets a write made while an undo runs win over the undo', async () => {
    const { server, book } = setup();
    await book.set(2, 'reject');
    server.autoRelease = false;
    const undone = book.undo();
    const later = book.set(2, 'accept');
    await flush();
    server.release(); // undo: 2 -> null on the server
    await undone;
    expect(book.tiles[2]).toEqual({ value: 'accept', pending: true, error: null });
    await flush();
    server.release();
    await later;
    expect(book.valueOf(2)).toBe('accept');
  });

  it('reports an undo that failed, leaving the tiles as they were', async () => {
    const { server, book } = setup();
    await book.set(2, 'reject');
    const writeError = new ApiError(403, 'Forbidden', 'you are a viewer');
    server.undoLabel = async () => { throw writeError; };
    await expect(book.undo()).rejects.toBe(writeError);
    expect(book.valueOf(2)).toBe('reject');
    // the queue keeps working after a failure
    await book.set(7, 'unsure');
    expect(book.valueOf(7)).toBe('unsure');
  });

  it('loads stored labels without sending anything', async () => {
    const { server, book } = setup();
    book.load([{ campaign_id: 1, object_id: 11, user_id: 9, value: 'unsure', created_at: null,
                 updated_at: null }]);
    expect(book.valueOf(11)).toBe('unsure');
    server.failNext = new ApiError(500, 'Internal Server Error', 'x');
    await book.set(11, 'accept');
    expect(book.valueOf(11)).toBe('unsure'); // rolled back to the loaded value
    expect(server.log).toEqual(['write 11=accept']);
  });
});

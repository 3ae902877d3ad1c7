import { describe, expect, it } from 'vitest';
import { PageQueue, type Page } from './pages.svelte';

/** Three pages of two items: cursors null -> 'b' -> 'c'. */
function listing(failures: Set<string> = new Set()) {
  const fetched: (string | null)[] = [];
  const pages: Record<string, Page<number>> = {
    first: { items: [1, 2], next: 'b' },
    b: { items: [3, 4], next: 'c' },
    c: { items: [5], next: null },
  };
  const fetchPage = async (cursor: string | null) => {
    const key = cursor ?? 'first';
    fetched.push(cursor);
    if (failures.has(key)) {
      failures.delete(key);
      throw new Error(`page ${key} failed`);
    }
    return pages[key] as Page<number>;
  };
  return { fetchPage, fetched };
}

const flush = () => new Promise((resolve) => setTimeout(resolve, 0));

describe('PageQueue', () => {
  it('prefetches the next page and preloads it', async () => {
    const { fetchPage, fetched } = listing();
    const preloaded: number[][] = [];
    const queue = new PageQueue(fetchPage, (page) => preloaded.push(page.items));
    await queue.start();
    await flush();
    expect(queue.current?.items).toEqual([1, 2]);
    expect(queue.number).toBe(1);
    expect(fetched).toEqual([null, 'b']);
    expect(preloaded).toEqual([[3, 4]]);
  });

  it('advances to the prefetched page without fetching it again', async () => {
    const { fetchPage, fetched } = listing();
    const queue = new PageQueue(fetchPage);
    await queue.start();
    expect(await queue.advance()).toBe(true);
    expect(queue.current?.items).toEqual([3, 4]);
    expect(queue.number).toBe(2);
    expect(await queue.advance()).toBe(true);
    expect(queue.hasNext).toBe(false);
    expect(await queue.advance()).toBe(false); // no page after the last
    expect(fetched).toEqual([null, 'b', 'c']);
  });

  it('fetches again when the prefetch failed, without showing its error', async () => {
    const { fetchPage, fetched } = listing(new Set(['b']));
    const queue = new PageQueue(fetchPage);
    await queue.start();
    expect(await queue.advance()).toBe(true);
    expect(queue.current?.items).toEqual([3, 4]);
    expect(queue.error).toBeNull();
    expect(fetched.filter((c) => c === 'b')).toHaveLength(2);
  });

  it('reports a page that cannot be loaded and keeps the current one', async () => {
    const { fetchPage } = listing(new Set(['first']));
    const queue = new PageQueue(fetchPage);
    await queue.start();
    expect(queue.current).toBeNull();
    expect(queue.error).toBe('page first failed');
    await queue.start(); // try again
    expect(queue.current?.items).toEqual([1, 2]);
    expect(queue.error).toBeNull();
  });
});

describe('PageQueue after the order changed', () => {
  it('restarts from the first page on the next advance, dropping the prefetched one', async () => {
    const { fetchPage, fetched } = listing();
    const queue = new PageQueue(fetchPage);
    await queue.start();
    await flush();
    expect(fetched).toEqual([null, 'b']);
    queue.restartOnAdvance();
    expect(queue.hasNext).toBe(true);
    expect(await queue.advance()).toBe(true);
    await flush();
    expect(fetched).toEqual([null, 'b', null, 'b']); // the first page again, then its next
    expect(queue.current?.items).toEqual([1, 2]);
    expect(queue.number).toBe(2);
  });

  it('reloads the first page in place, keeping the page number', async () => {
    const { fetchPage, fetched } = listing();
    const queue = new PageQueue(fetchPage);
    await queue.start();
    await queue.advance();
    await flush();
    expect(queue.number).toBe(2);
    expect(await queue.reload()).toBe(true);
    expect(queue.current?.items).toEqual([1, 2]);
    expect(queue.number).toBe(2);
    expect(fetched.filter((c) => c === null)).toHaveLength(2);
  });

  it('keeps the current page when the reload fails', async () => {
    const failures = new Set<string>();
    const { fetchPage } = listing(failures);
    const queue = new PageQueue(fetchPage);
    await queue.start();
    await queue.advance();
    failures.add('first');
    expect(await queue.reload()).toBe(false);
    expect(queue.error).toBe('page first failed');
    expect(queue.current?.items).toEqual([3, 4]);
    expect(queue.number).toBe(2);
  });
});

/**
 * Pages of a cursor-paginated listing, with the next page fetched (and its images preloaded)
 * while the user works on the current one, so that "next page" shows at once.
 *
 * A failed prefetch is not shown as an error: advancing fetches the page again and reports
 * that error if it fails too.
 *
 * When the listing's order changes (a newer probe ranks the candidates), the prefetched page
 * and the cursor belong to the old order: {@link PageQueue.restartOnAdvance} makes the next
 * page the new order's first, and {@link PageQueue.reload} shows it in place of the current one.
 */

/** What ordered a page of candidates. */
export interface PageOrder {
  kind: 'similarity' | 'probe';
  version: number | null; // the probe version
  strategy: string | null; // the probe's strategy: top, uncertainty, mix
}

export interface Page<T> {
  items: T[];
  next: string | null; // cursor of the page after this one; null: this is the last
  order?: PageOrder;
}

export type FetchPage<T> = (cursor: string | null, signal: AbortSignal) => Promise<Page<T>>;

export class PageQueue<T> {
  current: Page<T> | null = $state(null);
  /** 1 for the first page. */
  number = $state(0);
  loading = $state(false);
  error: string | null = $state(null);

  private upcoming: { cursor: string; page: Promise<Page<T>> } | null = null;
  private readonly abort = new AbortController();
  /** The next advance starts from the first page (the order changed). */
  private restart = false;

  constructor(private readonly fetchPage: FetchPage<T>,
              private readonly preload: (page: Page<T>) => void = () => {}) {}

  /** Whether a page follows the current one. */
  get hasNext(): boolean {
    return this.restart || this.current?.next != null;
  }

  /** Load the first page (again). */
  async start(): Promise<void> {
    this.upcoming = null;
    this.number = 0;
    await this.show(null);
  }

  /** Show the next page; false when there is none (or it failed: see `error`). */
  async advance(): Promise<boolean> {
    if (this.loading) return false;
    if (this.restart) {
      this.restart = false;
      return this.show(null);
    }
    const cursor = this.current?.next;
    if (cursor == null) return false;
    return this.show(cursor);
  }

  /** Forget the prefetched page: the next advance shows the first page of the new order. */
  restartOnAdvance(): void {
    this.upcoming = null;
    this.restart = true;
  }

  /** Show the first page of the new order in place of the current one (the page number stays);
   * false when it failed (the current page stays, see `error`). */
  async reload(): Promise<boolean> {
    if (this.loading) return false;
    this.upcoming = null;
    this.restart = false;
    const number = this.number;
    const shown = await this.show(null);
    if (shown) this.number = number;
    return shown;
  }

  /** Stop every request (the view is gone). */
  close(): void {
    this.abort.abort();
  }

  private async show(cursor: string | null): Promise<boolean> {
    this.loading = true;
    this.error = null;
    try {
      const prefetched = this.upcoming?.cursor === cursor ? this.upcoming.page : null;
      this.upcoming = null;
      let page: Page<T>;
      try {
        page = await (prefetched ?? this.fetchPage(cursor, this.abort.signal));
      } catch (error) {
        if (!prefetched || this.abort.signal.aborted) throw error;
        page = await this.fetchPage(cursor, this.abort.signal); // the prefetch failed: retry
      }
      this.current = page;
      this.number += 1;
      this.prefetch();
      return true;
    } catch (error) {
      if (!this.abort.signal.aborted) {
        this.error = error instanceof Error ? error.message : String(error);
      }
      return false;
    } finally {
      this.loading = false;
    }
  }

  private prefetch(): void {
    const cursor = this.current?.next;
    if (cursor == null) return;
    const page = this.fetchPage(cursor, this.abort.signal);
    page.then((next) => this.preload(next), () => undefined);
    this.upcoming = { cursor, page };
  }
}

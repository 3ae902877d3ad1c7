/**
 * Client-side routes (the History API; the server answers index.html for each of them).
 *
 * | path | screen |
 * |---|---|
 * | `/` | your campaigns |
 * | `/campaigns/new` | create a campaign |
 * | `/campaigns/:id` | label its candidates |
 * | `/campaigns/:id/seeds` | the examples its candidates are ranked against |
 * | `/campaigns/:id/review` | your labels in it, to check and change |
 * | `/campaigns/:id/learning` | active learning: the probe's versions and metrics, retraining |
 * | `/campaigns/:id/progress` | the team's progress, agreement and consensus |
 * | `/campaigns/:id/members` | its team |
 * | `/campaigns/:id/import` | tables of objects brought in as seeds or a source's labels |
 * | `/campaigns/:id/exports` | files of its labels |
 * | `/campaigns/:id/settings` | its description, settings, deletion (owners) |
 *
 * Every navigation leaves a performance mark ({@link NAVIGATION_MARK}), from which screens
 * measure how long they took to show (the browser tests read these measures).
 */

export type CampaignTab = 'label' | 'seeds' | 'review' | 'learning' | 'progress' | 'members'
  | 'import' | 'exports' | 'settings';
export const CAMPAIGN_TABS: readonly CampaignTab[] = ['label', 'seeds', 'review', 'learning',
                                                      'progress', 'members', 'import', 'exports',
                                                      'settings'];

export type Route =
  | { name: 'campaigns' }
  | { name: 'new-campaign' }
  | { name: 'campaign'; id: number; tab: CampaignTab }
  | { name: 'not-found'; path: string };

export const NAVIGATION_MARK = 'galsearch:navigate';

export function parseRoute(pathname: string): Route {
  const parts = pathname.split('/').filter(Boolean);
  if (parts.length === 0) return { name: 'campaigns' };
  if (parts[0] === 'campaigns') {
    if (parts.length === 1) return { name: 'campaigns' };
    if (parts.length === 2 && parts[1] === 'new') return { name: 'new-campaign' };
    const id = Number(parts[1]);
    if (Number.isSafeInteger(id) && id > 0 && /^\d+$/.test(parts[1] ?? '')) {
      if (parts.length === 2) return { name: 'campaign', id, tab: 'label' };
      const tab = parts[2] as CampaignTab;
      if (parts.length === 3 && CAMPAIGN_TABS.includes(tab) && tab !== 'label') {
        return { name: 'campaign', id, tab };
      }
    }
  }
  return { name: 'not-found', path: pathname };
}

export function routePath(route: Route): string {
  switch (route.name) {
    case 'campaigns': return '/';
    case 'new-campaign': return '/campaigns/new';
    case 'campaign':
      return route.tab === 'label' ? `/campaigns/${route.id}` : `/campaigns/${route.id}/${route.tab}`;
    case 'not-found': return route.path;
  }
}

class Router {
  route: Route = $state(parseRoute(globalThis.location?.pathname ?? '/'));

  /** Go to `path` (a path of this app), adding a history entry unless `replace`. */
  navigate(path: string, { replace = false } = {}): void {
    performance.mark(NAVIGATION_MARK);
    if (replace) history.replaceState(null, '', path);
    else history.pushState(null, '', path);
    this.route = parseRoute(location.pathname);
  }

  /** Follow the browser's back and forward buttons, and same-app links. */
  listen(): void {
    addEventListener('popstate', () => {
      performance.mark(NAVIGATION_MARK);
      this.route = parseRoute(location.pathname);
    });
    document.addEventListener('click', (event) => {
      if (event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey
          || event.shiftKey || event.altKey) return;
      const link = (event.target as Element | null)?.closest?.('a');
      if (!link || link.target || link.hasAttribute('download')) return;
      const url = new URL(link.href, location.href);
      if (url.origin !== location.origin || url.pathname.startsWith('/api/')) return;
      event.preventDefault();
      this.navigate(url.pathname + url.search);
    });
  }
}

export const router = new Router();

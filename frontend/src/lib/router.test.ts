import { describe, expect, it } from 'vitest';
import { parseRoute, routePath, type Route } from './router.svelte';

describe('routes', () => {
  it('parse the app paths', () => {
    expect(parseRoute('/')).toEqual({ name: 'campaigns' });
    expect(parseRoute('/campaigns')).toEqual({ name: 'campaigns' });
    expect(parseRoute('/campaigns/new')).toEqual({ name: 'new-campaign' });
    expect(parseRoute('/campaigns/12')).toEqual({ name: 'campaign', id: 12, tab: 'label' });
    expect(parseRoute('/campaigns/12/')).toEqual({ name: 'campaign', id: 12, tab: 'label' });
    expect(parseRoute('/campaigns/12/members')).toEqual({ name: 'campaign', id: 12, tab: 'members' });
    expect(parseRoute('/campaigns/12/review')).toEqual({ name: 'campaign', id: 12, tab: 'review' });
    expect(parseRoute('/campaigns/12/seeds')).toEqual({ name: 'campaign', id: 12, tab: 'seeds' });
    for (const tab of ['learning', 'progress', 'import', 'exports'] as const) {
      expect(parseRoute(`/campaigns/12/${tab}`)).toEqual({ name: 'campaign', id: 12, tab });
    }
  });

  it('send anything else to not-found', () => {
    for (const path of ['/campaigns/0', '/campaigns/-1', '/campaigns/1e3', '/campaigns/12/label',
                        '/campaigns/12/nope', '/campaigns/12/members/3', '/elsewhere']) {
      expect(parseRoute(path)).toEqual({ name: 'not-found', path });
    }
  });

  it('write paths that parse back to the same route', () => {
    const routes: Route[] = [
      { name: 'campaigns' }, { name: 'new-campaign' },
      { name: 'campaign', id: 3, tab: 'label' }, { name: 'campaign', id: 3, tab: 'members' },
      { name: 'campaign', id: 3, tab: 'review' }, { name: 'campaign', id: 3, tab: 'seeds' },
      { name: 'campaign', id: 3, tab: 'settings' }, { name: 'campaign', id: 3, tab: 'learning' },
      { name: 'campaign', id: 3, tab: 'progress' }, { name: 'campaign', id: 3, tab: 'import' },
      { name: 'campaign', id: 3, tab: 'exports' },
    ];
    for (const route of routes) expect(parseRoute(routePath(route))).toEqual(route);
  });
});

import { role } from './api';
import { focusHeadingFromNowOn, say } from './dom';
import { endpointsView } from './views/endpoints';
import { deadLettersView, messagesView } from './views/messages';
import { pipelineView, portalLinksView, sessionsView, stopPipeline, traceView } from './views/ops';

type View = (main: HTMLElement) => Promise<void>;
const VIEWS: Record<string, View> = {
  endpoints: endpointsView,
  messages: messagesView,
  'dead-letters': deadLettersView,
};
const OPERATOR_VIEWS: Record<string, View> = {
  trace: traceView,
  sessions: sessionsView,
  pipeline: pipelineView,
  'portal-links': portalLinksView,
};

function route(): void {
  const main = document.getElementById('main');
  if (!main) return;
  stopPipeline();
  say('');
  const name = window.location.hash.replace(/^#\/?/, '') || 'endpoints';
  const view = VIEWS[name] ?? (role() === 'operator' ? OPERATOR_VIEWS[name] : undefined) ?? endpointsView;
  for (const link of document.querySelectorAll<HTMLAnchorElement>('nav a[data-view]')) {
    if (link.dataset.view === name) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  // Each navigation draws into a fresh container: a view still loading when another is opened finishes into its
  // own, detached, container and never overwrites the newer view.
  const container = document.createElement('div');
  container.className = 'view';
  main.replaceChildren(container);
  main.setAttribute('aria-busy', 'true');
  const done = () => {
    if (container.isConnected) main.setAttribute('aria-busy', 'false');
  };
  view(container).then(done, (error: Error) => {
    done();
    if (container.isConnected) say(error.message, 'error');
  });
}

window.addEventListener('hashchange', () => {
  focusHeadingFromNowOn();
  route();
});
route();

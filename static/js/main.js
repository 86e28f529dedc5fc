// Santamon signals console: wires the modules and starts. Each module keeps its own state;
// they talk through the few functions and events they export. The page talks to its own
// origin only and never puts a value from a signal into the page as markup (see dom.js).
import * as agents from './agents.js';
import * as cards from './cards.js';
import * as chart from './chart.js';
import * as detail from './detail.js';
import * as filters from './filters.js';
import * as groups from './groups.js';
import * as jobs from './jobs.js';
import * as keyboard from './keyboard.js';
import * as keys from './keys.js';
import * as problems from './problems.js';
import * as queue from './queue.js';
import * as refresh from './refresh.js';
import * as selection from './selection.js';
import * as signin from './signin.js';
import * as silences from './silences.js';

// The queue shows signals, or their repeats grouped; the silences page replaces both.
const onSilencesPage = () => filters.currentView().page === 'silences';
const list = () => (filters.currentView().grouped ? groups : queue);

function showView() {
  silences.show(onSilencesPage());
  groups.show(filters.currentView().grouped);
  if (filters.currentView().grouped) queue.leave();
}

filters.init();
filters.onChange(({ chart: windowChanged }) => {
  showView();
  if (!signin.isSignedIn()) return;
  if (onSilencesPage()) { silences.load(); return; }
  list().load({ reset: true });
  if (windowChanged) chart.load();
});
queue.init();
groups.init();
selection.init();
detail.init();
cards.init();
agents.init();
chart.init();
silences.init();
keys.init();
keyboard.init({ active: () => signin.isSignedIn() && !onSilencesPage() });
refresh.init({
  load: ({ reset }) => [
    ...(onSilencesPage()
      ? [silences.load(), cards.load()]
      : [cards.load(), agents.load(), problems.load(), chart.load(), list().load({ reset, quiet: !reset })]),
    keys.isOpen() ? keys.load() : null],
  after: jobs.load,
  active: signin.isSignedIn,
});
showView();
signin.start({
  enter() {
    filters.showInControls();
    refresh.start();
  },
  leave: refresh.stop,
  signedOut() {
    queue.clear();
    groups.clear();
    keys.clear();
  },
});

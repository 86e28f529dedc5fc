// Santamon signals console: wires the modules and starts. Each module keeps its own state;
// they talk through the few functions and events they export. The page talks to its own
// origin only and never puts a value from a signal into the page as markup (see dom.js).
import * as agents from './agents.js';
import * as cards from './cards.js';
import * as chart from './chart.js';
import * as detail from './detail.js';
import * as filters from './filters.js';
import * as jobs from './jobs.js';
import * as keyboard from './keyboard.js';
import * as keys from './keys.js';
import * as problems from './problems.js';
import * as queue from './queue.js';
import * as refresh from './refresh.js';
import * as selection from './selection.js';
import * as signin from './signin.js';

filters.init();
filters.onChange(({ chart: windowChanged }) => {
  if (!signin.isSignedIn()) return;
  queue.load({ reset: true });
  if (windowChanged) chart.load();
});
queue.init();
selection.init();
detail.init();
cards.init();
agents.init();
chart.init();
keys.init();
keyboard.init({ active: signin.isSignedIn });
refresh.init({
  load: ({ reset }) => [cards.load(), agents.load(), problems.load(), chart.load(),
    queue.load({ reset, quiet: !reset }), keys.isOpen() ? keys.load() : null],
  after: jobs.load,
  active: signin.isSignedIn,
});
signin.start({
  enter() {
    filters.showInControls();
    refresh.start();
  },
  leave: refresh.stop,
  signedOut() {
    queue.clear();
    keys.clear();
  },
});

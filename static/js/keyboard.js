// The queue from the keyboard: j/k move, Enter opens, x selects, a/r/o triage, / searches,
// Esc closes the open row or clears the selection. Keys typed into a field are left alone; a
// read-only key has no selection or triage keys.
import { canWrite } from './api.js';
import * as detail from './detail.js';
import { $ } from './dom.js';
import * as queue from './queue.js';
import * as selection from './selection.js';
import { setStatus } from './triage.js';

function isTyping(target) {
  if (!(target instanceof Element)) return false;
  if (target.isContentEditable) return true;
  if (target.tagName === 'TEXTAREA' || target.tagName === 'SELECT') return true;
  return target.tagName === 'INPUT' && !['checkbox', 'radio', 'button', 'submit'].includes(target.type);
}

function onKeydown(e) {
  if (e.defaultPrevented || e.altKey || e.ctrlKey || e.metaKey) return;
  if (isTyping(e.target)) {
    if (e.key === 'Escape') e.target.blur();
    return;
  }
  const focused = queue.focusedId();
  if ('xaro'.includes(e.key) && !canWrite()) return;
  switch (e.key) {
    case 'j': queue.moveFocus(1); break;
    case 'k': queue.moveFocus(-1); break;
    case '/': $('#f-search').focus(); $('#f-search').select(); break;
    case 'Enter':
      if (e.target instanceof Element && e.target.closest('button, a, summary, .agent')) return;
      if (!focused) return;
      detail.toggle(focused);
      break;
    case 'x':
      if (!focused) return;
      selection.toggle(focused, !selection.has(focused), false);
      break;
    case 'a':
      if (!focused) return;
      setStatus(focused, 'acknowledged', '');
      break;
    case 'r':
      if (!focused) return;
      setStatus(focused, 'resolved', '');
      break;
    case 'o':
      if (!focused) return;
      setStatus(focused, 'open', '');
      break;
    case 'Escape':
      if (focused && detail.isExpanded(focused)) detail.toggle(focused);
      else if (selection.size()) selection.clear();
      break;
    default:
      return;
  }
  e.preventDefault();
}

// `active()`: whether the console is showing (the sign-in form has keys of its own).
export function init({ active }) {
  document.addEventListener('keydown', (e) => { if (active()) onKeydown(e); });
}

// Material wraps a table wider than the screen in a box that scrolls
// sideways; a reader on a keyboard must be able to reach and scroll it too.
// `document$` is Material's: it emits on the first load and on every instant
// navigation, so tables of every page get the attribute.
document$.subscribe(() => {
  for (const box of document.querySelectorAll(".md-typeset__scrollwrap")) {
    box.tabIndex = 0;
  }
});

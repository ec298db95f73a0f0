// L2C developer console: the copy buttons and the confirmation of dangerous forms.
// Served from /console/static/ (the Content-Security-Policy forbids inline script).
(function () {
  'use strict';
  function copy(button) {
    var target = document.getElementById(button.getAttribute('data-copy'));
    if (!target) { return; }
    var text = target.textContent;
    var done = function () {
      var label = button.textContent;
      button.textContent = '已复制';
      button.classList.add('copied');
      setTimeout(function () { button.textContent = label; button.classList.remove('copied'); }, 1500);
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, function () { select(target); });
    } else {
      select(target);
    }
  }
  function select(node) {
    var range = document.createRange();
    range.selectNodeContents(node);
    var sel = window.getSelection();
    sel.removeAllRanges();
    sel.addRange(range);
  }
  document.addEventListener('click', function (e) {
    var b = e.target.closest('[data-copy]');
    if (b) { e.preventDefault(); copy(b); }
  });
  document.addEventListener('submit', function (e) {
    var msg = e.target.getAttribute('data-confirm');
    if (msg && !window.confirm(msg)) { e.preventDefault(); }
  });
})();

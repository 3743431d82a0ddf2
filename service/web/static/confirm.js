/* Asks before a form that cannot be taken back with the same click is sent (停用, retire): every form
 * with a data-confirm text. A script file of its own, since the pages' Content-Security-Policy allows no
 * inline script, and the accounts and registry pages load nothing else. */
"use strict";

document.addEventListener("submit", (ev) => {
  const form = ev.target.closest("form[data-confirm]");
  if (form && !window.confirm(form.dataset.confirm)) ev.preventDefault();
});

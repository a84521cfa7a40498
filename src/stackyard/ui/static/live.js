// Live sections: an element with data-refresh="N" is fetched again every N seconds and
// replaced by its new version (the same page, the same id), until the new version no longer
// asks to be refreshed (a job that finished, a sync that ended). Focus and scrolling stay
// where they are; nothing else on the page is touched.
"use strict";

(function () {
  function watch(element) {
    const seconds = Number(element.dataset.refresh) || 5;
    setTimeout(async function refresh() {
      let fresh = null;
      try {
        const answer = await fetch(location.href, { headers: { "x-stackyard-ui": "1" } });
        if (answer.ok) {
          const page = new DOMParser().parseFromString(await answer.text(), "text/html");
          fresh = page.getElementById(element.id);
        }
      } catch (error) {
        // The gateway restarting: try again on the next tick.
      }
      if (fresh === null) {
        setTimeout(refresh, seconds * 1000);
        return;
      }
      const current = document.getElementById(element.id);
      if (current.contains(document.activeElement)) {
        // Someone is using a control in the section: leave it alone this time.
        setTimeout(refresh, seconds * 1000);
        return;
      }
      current.replaceWith(fresh);
      if (fresh.dataset.refresh) watch(fresh);
    }, seconds * 1000);
  }
  document.querySelectorAll("[data-refresh][id]").forEach(watch);
})();

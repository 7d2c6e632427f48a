// Find and sort on the lists of feeds, and the copy buttons of a feed's page. The pages
// work without it: it only shows the controls it makes work. No framework, no request.
(() => {
  "use strict";
  const fold = (text) =>
    text.normalize("NFD").replace(/[\u0300-\u036f]/g, "").toLowerCase();
  const tools = document.getElementById("tools");
  if (tools) {
    const input = document.getElementById("filter");
    const sort = document.getElementById("sort");
    const status = document.getElementById("filter-status");
    const lists = [...document.querySelectorAll("ul.feeds")];
    const rows = lists.flatMap((list) => [...list.children]).map((li) => {
      const link = li.querySelector("a");
      return {
        li,
        name: link.textContent,
        text: fold(`${link.textContent} ${link.getAttribute("href")}`),
        stories: Number(li.querySelector("data").value),
        newest: li.querySelector("time").getAttribute("datetime"),
      };
    });
    const byName = (a, b) => a.name.localeCompare(b.name);
    const orders = {
      name: byName,
      stories: (a, b) => b.stories - a.stories || byName(a, b),
      newest: (a, b) => (a.newest < b.newest) - (a.newest > b.newest) || byName(a, b),
    };
    const filter = () => {
      const words = fold(input.value).split(/\s+/).filter(Boolean);
      let shown = 0;
      for (const row of rows) {
        const hit = words.every((word) => row.text.includes(word));
        row.li.hidden = !hit;
        shown += hit;
      }
      for (const section of document.querySelectorAll("section:has(ul.feeds)")) {
        section.hidden = !section.querySelector("ul.feeds li:not([hidden])");
      }
      const feeds = (n) => `${n} feed${n === 1 ? "" : "s"}`;
      status.textContent = words.length
        ? `${shown ? feeds(shown) : "No feed"} of the ${feeds(rows.length)} on this page match${shown === 1 ? "es" : ""}.`
        : "";
    };
    const reorder = () => {
      const order = orders[sort.value];
      for (const list of lists) {
        const mine = rows.filter((row) => row.li.parentElement === list).sort(order);
        list.append(...mine.map((row) => row.li));
      }
    };
    input.addEventListener("input", filter);
    sort.addEventListener("change", reorder);
    tools.hidden = false;
    // Back and forward keep what was typed and chosen.
    if (input.value) filter();
    if ([...sort.options].some((option) => option.selected !== option.defaultSelected)) reorder();
  }
  for (const button of document.querySelectorAll("button[data-copy]")) {
    const field = document.getElementById(button.dataset.copy);
    button.addEventListener("click", async () => {
      field.select();
      try {
        await navigator.clipboard.writeText(field.value);
        button.textContent = "Copied";
      } catch {
        button.textContent = "Selected: press Ctrl+C";
      }
      setTimeout(() => { button.textContent = "Copy"; }, 4000);
    });
    button.hidden = false;
  }
})();

// Find and sort on the lists of feeds, and the copy buttons of a feed's page. The pages
// work without it: it only shows the controls it makes work. No framework; the one request
// it makes is for the list of every provider, when a search first needs it.
(() => {
  "use strict";
  const fold = (text) =>
    text.normalize("NFD").replace(/[\u0300-\u036f]/g, "").toLowerCase();
  const SHOWN = 50; // providers shown at most beyond the page's own rows
  const plural = (n, one, many) => `${n.toLocaleString("en")} ${n === 1 ? one : many}`;
  const tools = document.getElementById("tools");
  if (tools) {
    const input = document.getElementById("filter");
    const sort = document.getElementById("sort");
    const status = document.getElementById("filter-status");
    const lists = [...document.querySelectorAll("main ul.feeds")];
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

    // Providers this page does not list: from the list of every provider, fetched once.
    const more = document.getElementById("more");
    const shown = new Set(rows.map((row) => row.li.querySelector("a").getAttribute("href")));
    let others = null;
    const loadOthers = () => {
      others ??= fetch(tools.dataset.list)
        .then((response) => (response.ok ? response.text() : ""))
        .then((text) =>
          text.split("\n").filter(Boolean).map((line) => {
            const [path, name, stories, newest] = line.split("\t");
            return { path, name, text: fold(`${name} ${path}`), stories: Number(stories), newest };
          }).filter((other) => !shown.has(`${other.path}.html`)),
        )
        .catch(() => []);
      return others;
    };
    const otherRow = (other) => {
      const li = document.getElementById("row").content.firstElementChild.cloneNode(true);
      const link = li.querySelector("a");
      link.href = `${other.path}.html`;
      link.textContent = other.name;
      li.querySelector("data").value = other.stories;
      li.querySelector("data").textContent = plural(other.stories, "story", "stories");
      li.querySelector("time").dateTime = other.newest;
      li.querySelector("time").textContent = other.newest.slice(0, 10);
      for (const format of li.querySelectorAll(".formats a")) {
        format.href = `${other.path}.${format.dataset.format}`;
        format.querySelector(".hidden").append(other.name);
      }
      return li;
    };

    let typed = 0; // the latest search, so that a slow answer does not undo a newer one
    const filter = async () => {
      const search = ++typed;
      const words = fold(input.value).split(/\s+/).filter(Boolean);
      const hits = (item) => words.every((word) => item.text.includes(word));
      let found = 0;
      for (const row of rows) {
        row.li.hidden = !hits(row);
        found += !row.li.hidden;
      }
      for (const section of document.querySelectorAll("main section:has(ul.feeds)")) {
        if (section !== more) section.hidden = !section.querySelector("li:not([hidden])");
      }
      let extra = [];
      if (more && words.length) {
        const all = await loadOthers();
        if (search !== typed) return;
        extra = all.filter(hits);
      }
      if (more) {
        more.querySelector("ul").replaceChildren(...extra.slice(0, SHOWN).map(otherRow));
        more.hidden = !extra.length;
      }
      const listed = plural(rows.length, "feed", "feeds");
      let beyond = extra.length ? ` and ${plural(extra.length, "more provider", "more providers")}` : "";
      if (extra.length > SHOWN) beyond += `, of which the ${SHOWN} with the most stories are shown`;
      status.textContent = words.length ? `Found ${found} of the ${listed} listed here${beyond}.` : "";
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
      setTimeout(() => {
        button.textContent = "Copy";
      }, 4000);
    });
    button.hidden = false;
  }
})();

// Town index: GET /api/towns -> [{slug, name, bbox}, ...] and link each to /t/<slug>/.

const list = document.getElementById('towns');
const status = document.getElementById('towns-status');

function townsFrom(body) {
  // The API returns a plain list; also accept {"towns": [...]} so a wrapper does not break the page.
  if (Array.isArray(body)) return body;
  if (body && Array.isArray(body.towns)) return body.towns;
  return [];
}

async function main() {
  let towns;
  try {
    const resp = await fetch('/api/towns', { headers: { Accept: 'application/json' } });
    if (!resp.ok) throw new Error(`HTTP ${resp.status}`);
    towns = townsFrom(await resp.json()).filter((t) => t && typeof t.slug === 'string' && t.slug);
  } catch (err) {
    status.textContent = `Could not load the list of towns (${err.message}). Try reloading the page.`;
    status.classList.add('error');
    return;
  }
  if (towns.length === 0) {
    status.textContent = 'No towns yet.';
    return;
  }
  towns.sort((a, b) => String(a.name || a.slug).localeCompare(String(b.name || b.slug)));
  for (const t of towns) {
    const li = document.createElement('li');
    const a = document.createElement('a');
    a.href = `/t/${encodeURIComponent(t.slug)}/`;
    a.textContent = t.name || t.slug;
    li.append(a);
    list.append(li);
  }
  status.textContent = '';
  status.hidden = true;
}

main();

// The agents' list: GET /console/agents (behind the operator's token when one is set).
import { guardedFetch, errorOf, el } from './common.js';

const status = document.getElementById('status');
const list = document.getElementById('agents');

async function load() {
  const response = await guardedFetch('/console/agents');
  if (!response.ok) {
    status.textContent = `Cannot list the agents: ${await errorOf(response)}`;
    status.className = 'error';
    return;
  }
  const { agents } = await response.json();
  status.textContent = agents.length ? 'Open to browsers:' : 'No agent is open to browsers.';
  list.replaceChildren(...agents.map((agent) => {
    const item = el('li');
    const link = el('a', agent.name);
    link.href = `/agents/${encodeURIComponent(agent.name)}`;
    item.append(link);
    return item;
  }));
}

load().catch((err) => { status.textContent = `Cannot list the agents: ${err}`; });

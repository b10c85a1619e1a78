// An agent's page: call the agent from this browser over WebRTC, relayed by agent serve
// (POST /agents/{name}/calls), and show the call's feed: transcript, tools, turns, events.
import { guardedFetch, errorOf, el } from './common.js';

const agent = decodeURIComponent(location.pathname.split('/')[2] ?? '');
const $ = (id) => document.getElementById(id);
const ICE_GATHERING_MS = 2000;

let call = null; // { pc, mic, channel, feed }

$('agent-name').textContent = agent;
document.title = `${agent} · console`;
$('connect').onclick = () => connect().catch((err) => fail(err));
$('disconnect').onclick = () => disconnect('Disconnected');
$('filter').oninput = applyFilter;

function setStatus(text, state) {
  $('status').textContent = text;
  $('status').className = state === 'error' ? 'error' : '';
  document.body.dataset.state = state;
}

function fail(err) {
  disconnect(`Error: ${err.message ?? err}`, 'error');
}

async function connect() {
  $('connect').disabled = true;
  setStatus('Asking for the microphone…', 'connecting');
  const mic = await navigator.mediaDevices.getUserMedia({ audio: true });
  const pc = new RTCPeerConnection();
  call = { pc, mic, channel: null, feed: null };
  // The events channel is made before the offer, so the offer negotiates it.
  const channel = pc.createDataChannel('oai-events');
  call.channel = channel;
  channel.onmessage = (message) => logEvent('channel', message.data);
  channel.onopen = () => setStatus('Connected', 'connected');
  pc.ontrack = (event) => {
    $('remote-audio').srcObject = event.streams[0] ?? new MediaStream([event.track]);
  };
  pc.onconnectionstatechange = () => {
    if (pc.connectionState === 'failed') fail(new Error('the connection failed'));
  };
  for (const track of mic.getAudioTracks()) pc.addTrack(track, mic);
  await pc.setLocalDescription(await pc.createOffer());
  await iceGathered(pc);
  setStatus('Calling…', 'connecting');
  const offer = pc.localDescription.sdp;
  const { answer, callId, feedToken } = $('mode').value === 'client-secret'
    ? await callWithSecret(offer)
    : await callRelayed(offer);
  await pc.setRemoteDescription({ type: 'answer', sdp: answer });
  $('disconnect').disabled = false;
  logEvent('console', JSON.stringify({ type: 'call.created', call_id: callId }));
  if (callId && feedToken) openFeed(callId, feedToken);
}

/** The server relays the offer with its key and attaches the sideband. */
async function callRelayed(offer) {
  const response = await guardedFetch(`/agents/${encodeURIComponent(agent)}/calls`, {
    method: 'POST',
    headers: { 'content-type': 'application/sdp' },
    body: offer,
  });
  if (response.status !== 201) throw new Error(await errorOf(response));
  return {
    answer: await response.text(),
    callId: response.headers.get('x-agent-call-id'),
    feedToken: response.headers.get('x-agent-feed-token'),
  };
}

/**
 * The page mints a short-lived secret, posts the offer to the platform itself, then asks the
 * server to attach (it runs the agent's tools). The secret stays in this function.
 */
async function callWithSecret(offer) {
  const base = `/agents/${encodeURIComponent(agent)}`;
  const minted = await guardedFetch(`${base}/client-secret`, { method: 'POST' });
  if (!minted.ok) throw new Error(await errorOf(minted));
  const { value } = await minted.json();
  const response = await fetch(platformCallsUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/sdp', authorization: `Bearer ${value}` },
    body: offer,
  });
  if (response.status !== 201) throw new Error(await errorOf(response));
  const callId = (response.headers.get('location') ?? '').split('/').pop();
  const answer = await response.text();
  const attached = await guardedFetch(`${base}/calls/${encodeURIComponent(callId)}/attach`, {
    method: 'POST',
  });
  if (!attached.ok) throw new Error(await errorOf(attached));
  const { feed_token: feedToken } = await attached.json();
  return { answer, callId, feedToken };
}

/** Offers only the modes serve.toml turns on for this agent. */
let platformCallsUrl = null;
async function loadModes() {
  const response = await guardedFetch('/console/agents');
  if (!response.ok) return;
  const entry = (await response.json()).agents.find((a) => a.name === agent);
  if (!entry) return;
  platformCallsUrl = entry.platform_calls_url;
  const options = $('mode').options;
  options[0].disabled = !entry.calls;
  options[1].disabled = !entry.client_secrets || !platformCallsUrl;
  if (options[0].disabled && !options[1].disabled) $('mode').value = 'client-secret';
  document.body.dataset.modes = 'loaded';
}
loadModes().catch((err) => logEvent('console', JSON.stringify({ type: 'error', message: String(err) })));

/** Waits until the offer holds this browser's candidates (bounded: a host candidate is quick). */
function iceGathered(pc) {
  if (pc.iceGatheringState === 'complete') return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ICE_GATHERING_MS);
    pc.addEventListener('icegatheringstatechange', () => {
      if (pc.iceGatheringState === 'complete') { clearTimeout(timer); resolve(); }
    });
  });
}

function openFeed(callId, token) {
  const url = `/agents/${encodeURIComponent(agent)}/calls/${encodeURIComponent(callId)}/feed`
    + `?token=${encodeURIComponent(token)}`;
  const feed = new EventSource(url);
  call.feed = feed;
  feed.onmessage = (message) => {
    logEvent('feed', message.data);
    show(JSON.parse(message.data));
  };
  // The feed ends with the call; do not let EventSource reconnect to a call that is over.
  feed.onerror = () => feed.close();
}

function disconnect(text, state = 'closed') {
  if (call) {
    call.feed?.close();
    call.channel?.close();
    call.pc.close();
    for (const track of call.mic.getTracks()) track.stop();
    call = null;
  }
  $('connect').disabled = false;
  $('disconnect').disabled = true;
  setStatus(text, state);
}

// What the feed says, shown where it belongs.
let pendingCost = 0;
const lines = new Map(); // item id -> transcript line
const tools = new Map(); // tool call id -> list item

function show(event) {
  switch (event.type) {
    case 'user.delta': transcriptLine('user', event.item_id).append(event.delta); break;
    case 'user.transcript': transcriptLine('user', event.item_id).textContent = event.text; break;
    case 'assistant.delta': transcriptLine('assistant', event.item_id).append(event.delta); break;
    case 'tool.started': toolStarted(event); break;
    case 'tool.finished': toolFinished(event); break;
    case 'tool.not_run': toolFinished({ ...event, ok: false, duration_ms: 0 }); break;
    case 'handoff': handoff(event); break;
    case 'guardrail.tripped': guardrailTripped(event); break;
    case 'cost':
      pendingCost += event.cost_usd ?? 0;
      $('session-cost').textContent = usd(event.session_cost_usd);
      break;
    case 'turn.latency': turnRow(event); break;
    case 'closed': disconnect(`Call over: ${event.reason}`); break;
    default: break;
  }
}

function transcriptLine(role, itemId) {
  let line = lines.get(itemId);
  if (!line) {
    const item = el('li', '', role);
    item.append(el('span', role === 'user' ? 'You' : 'Agent', 'role'));
    line = el('span', '', 'text');
    item.append(line);
    $('transcript').append(item);
    lines.set(itemId, line);
  }
  return line;
}

// A handoff: the header names the agent that has the conversation now, and the transcript
// shows where it changed hands.
function handoff(event) {
  $('current-agent').textContent = `now with ${event.to}`;
  const item = el('li', '', 'handoff');
  item.append(el('span', `${event.from} → ${event.to}`, 'role'));
  $('transcript').append(item);
}

// A guardrail stopped the user's message or the answer: the answer's text so far is struck
// through, and the transcript says which rule and why.
function guardrailTripped(event) {
  const line = event.item_id ? lines.get(event.item_id) : null;
  if (line) line.style.textDecoration = 'line-through';
  const item = el('li', '', 'handoff');
  item.append(el('span', `guardrail ${event.guardrail} stopped the ${event.stage}: ${event.reason}`, 'role'));
  $('transcript').append(item);
}

function toolStarted(event) {
  const item = el('li');
  item.dataset.state = 'running';
  item.append(el('strong', event.name), ' ', el('code', event.arguments), el('div', 'running…'));
  $('tools').append(item);
  tools.set(event.call_id, item);
}

function toolFinished(event) {
  if (!tools.has(event.call_id)) toolStarted({ ...event, arguments: event.arguments ?? '' });
  const item = tools.get(event.call_id);
  item.dataset.state = event.ok ? 'done' : 'failed';
  if (!event.ok) item.classList.add('failed');
  const result = el('div');
  result.append(`→ ${event.duration_ms} ms: `, el('code', event.output));
  item.lastChild.replaceWith(result);
}

function turnRow(event) {
  const row = el('tr');
  const ms = (value) => (value == null ? '–' : `${value} ms`);
  for (const text of [event.turn, ms(event.first_audio_ms), ms(event.total_ms), usd(pendingCost)]) {
    row.append(el('td', String(text)));
  }
  $('turns').tBodies[0].append(row);
  pendingCost = 0;
}

function usd(value) {
  return `$${(value ?? 0).toFixed(value && value < 0.01 ? 5 : 4)}`;
}

// The event log: every channel and feed event, one line each, filtered by text.
function logEvent(source, data) {
  let type = '?';
  try { type = JSON.parse(data).type ?? '?'; } catch { /* shown as it came */ }
  const item = el('li');
  item.append(el('span', source, 'source'), `${type} ${data.slice(0, 400)}`);
  item.hidden = !matches(item);
  $('log').append(item);
}

function matches(item) {
  const filter = $('filter').value.trim().toLowerCase();
  return !filter || item.textContent.toLowerCase().includes(filter);
}

function applyFilter() {
  for (const item of $('log').children) item.hidden = !matches(item);
}

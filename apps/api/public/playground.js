// The playground, a team chat over one conversation room: every member sees each prompt with its author and
// the reply streaming in, rendered as Markdown (marked, sanitised by DOMPurify: see scripts/bundle-client.mjs).
// Each reply shows its time to first token and tokens/s as measured in this browser. A dropped connection is
// shown, and replies resume from their last event when it is back. Reloading re-joins (name, key and
// conversation are kept in localStorage) and the running generation is replayed from its first token.
(() => {
  const $ = (name) => document.querySelector(`[name=${name}]`);
  const status = document.getElementById('status');
  const connection = document.getElementById('connection');
  const messages = document.getElementById('messages');
  const saved = JSON.parse(localStorage.getItem('tokenwire-playground') || '{}');
  let client;
  let conversationId;
  let joining = false; // generations handed over while joining were already running: joined mid-stream
  let sentAt; // when this page sent its last prompt, for its own reply's TTFT
  const open = new Set(); // streams still running, newest last (Stop cancels the newest)

  $('author').value = saved.author || '';
  $('key').value = saved.key || '';
  if (saved.conversationId) $('conversation').value = saved.conversationId;

  const remember = () =>
    localStorage.setItem('tokenwire-playground', JSON.stringify({ author: $('author').value.trim(), key: $('key').value.trim(), conversationId, model: $('model').value }));
  const authHeaders = () => ($('key').value.trim() ? { authorization: `Bearer ${$('key').value.trim()}` } : {});
  const element = (tag, className, text) => Object.assign(document.createElement(tag), className ? { className } : {}, text !== undefined ? { textContent: text } : {});
  const avatar = (name) => element('div', 'avatar', (name || '?').trim().charAt(0).toUpperCase());
  const scrollDown = () => window.scrollTo({ top: document.body.scrollHeight });

  async function loadModels() {
    const response = await fetch('/v1/models', { headers: authHeaders() });
    if (!response.ok) throw new Error((await response.json()).error.message);
    const { data } = await response.json();
    $('model').replaceChildren(...data.map((m) => new Option(m.id, m.id)));
    if (saved.model && data.some((m) => m.id === saved.model)) $('model').value = saved.model;
  }

  function notice(kind, text) {
    const line = element('div', 'notice', text);
    line.dataset.kind = kind;
    messages.append(line);
    scrollDown();
  }

  function setConnection(state) {
    connection.dataset.state = state;
    connection.textContent = { connected: 'connected', reconnecting: 'reconnecting…', reconnected: 'connected' }[state];
    if (state === 'reconnecting') notice('reconnecting', 'Connection lost: reconnecting…');
    if (state === 'reconnected') {
      notice('reconnected', 'Reconnected: replies resume where they stopped');
      for (const stream of open) stream.block.dataset.resumed = 'true';
    }
  }

  /** The member's prompt above the reply: author and text come from the generation (GET /v1/generations/:id). */
  function showPrompt(turn, jobId, modelLabel) {
    const prompt = element('div', 'prompt');
    const who = element('div', 'who');
    const name = element('b', 'author', '…');
    who.append(name);
    const body = element('div', 'body');
    const bubble = element('div', 'bubble');
    bubble.append(who, body);
    prompt.append(avatar('?'), bubble);
    turn.prepend(prompt);
    fetch(`/v1/generations/${encodeURIComponent(jobId)}`, { headers: authHeaders() })
      .then((response) => (response.ok ? response.json() : Promise.reject(new Error(`status ${response.status}`))))
      .then((view) => {
        const author = view.author || 'someone';
        name.textContent = author;
        prompt.firstChild.replaceWith(avatar(author));
        if (author === $('author').value.trim()) prompt.classList.add('mine');
        who.append(element('span', '', new Date(view.createdAt).toLocaleTimeString()));
        body.textContent = view.prompt ?? '';
        modelLabel.textContent = view.model;
      })
      .catch((error) => (body.textContent = `(prompt unavailable: ${error.message})`));
  }

  /** One turn per generation: the prompt, then the reply following the stream's events. */
  function show(stream) {
    const shownAt = performance.now();
    const startedAt = sentAt ?? shownAt;
    sentAt = undefined;
    const lateJoin = joining;
    const turn = element('div', 'turn');
    const block = element('div', 'message');
    block.dataset.jobId = stream.jobId;
    block.dataset.status = 'streaming';
    const who = element('div', 'who');
    const state = element('span', 'state', 'streaming');
    const modelLabel = element('b', 'model', 'assistant');
    who.append(modelLabel, state);
    const text = element('div', 'text');
    const stats = element('div', 'stats', lateJoin ? 'joined mid-stream' : 'waiting for the first token…');
    const bubble = element('div', 'bubble');
    bubble.append(who, text, stats);
    block.append(element('div', 'avatar', 'AI'), bubble);
    turn.append(block);
    showPrompt(turn, stream.jobId, modelLabel);
    messages.append(turn);
    scrollDown();
    const entry = { stream, block };
    open.add(entry);
    $('stop').disabled = false;

    let firstTokenAt;
    let chunks = 0;
    let completionTokens;
    let frame;
    const renderText = () => {
      frame = undefined;
      text.innerHTML = TokenwireMarkdown.render(stream.text);
    };
    const ttftText = () => (lateJoin ? 'joined mid-stream' : `TTFT ${Math.round(firstTokenAt - startedAt)} ms`);
    const onEvent = (event) => {
      if (event.type === 'chunk' && event.delta) {
        chunks++;
        if (firstTokenAt === undefined) {
          firstTokenAt = performance.now();
          if (!lateJoin) block.dataset.ttftMs = String(Math.round(firstTokenAt - startedAt));
          stats.textContent = `${ttftText()} · streaming…`;
        }
        frame ??= requestAnimationFrame(renderText);
      }
      if (event.type === 'usage' && event.completionTokens !== undefined) completionTokens = event.completionTokens;
      if (event.type === 'done' || event.type === 'error' || event.type === 'cancelled') {
        if (frame !== undefined) cancelAnimationFrame(frame);
        renderText();
        const tokens = completionTokens ?? chunks;
        const seconds = firstTokenAt === undefined ? 0 : (performance.now() - firstTokenAt) / 1000;
        const parts = firstTokenAt === undefined ? ['no tokens'] : [ttftText()];
        if (!lateJoin && tokens > 1 && seconds > 0) {
          const perSecond = tokens / seconds;
          block.dataset.tokensPerSecond = perSecond.toFixed(1);
          parts.push(`${perSecond.toFixed(1)} tokens/s`);
        }
        parts.push(`${tokens} tokens`);
        if (block.dataset.resumed) parts.push('resumed after a reconnect');
        stats.textContent = parts.join(' · ');
        block.dataset.status = event.type;
        state.textContent = event.type === 'error' ? `error: ${event.message}` : event.type === 'done' ? 'done' : 'stopped';
        open.delete(entry);
        $('stop').disabled = open.size === 0;
      }
    };
    void (async () => {
      for await (const event of stream) onEvent(event); // from the first event, then live
    })().catch((error) => {
      block.dataset.status = 'error';
      state.textContent = `error: ${error.message}`;
      open.delete(entry);
    });
  }

  async function join() {
    conversationId = $('conversation').value.trim() || 'lobby';
    status.textContent = 'connecting…';
    try {
      await loadModels();
      client?.close();
      client = new Tokenwire.TokenwireClient({ baseUrl: location.origin, apiKey: $('key').value.trim() || undefined });
      client.onConnection(setConnection);
      messages.replaceChildren();
      open.clear();
      joining = true;
      try {
        await client.join(conversationId, show);
      } finally {
        joining = false;
      }
      remember();
      document.getElementById('room').textContent = `# ${conversationId}`;
      status.textContent = `in conversation “${conversationId}”`;
      $('send').disabled = false;
    } catch (error) {
      status.textContent = `error: ${error.message}`;
    }
  }

  async function send() {
    const prompt = $('prompt').value.trim();
    if (!prompt || !client) return;
    $('prompt').value = '';
    remember();
    const author = $('author').value.trim() || undefined;
    sentAt = performance.now();
    try {
      // Every member, this tab included, receives it through the room's `generation` announcement.
      await client.generate({ conversationId, model: $('model').value, author, messages: [{ role: 'user', content: prompt }] });
    } catch (error) {
      sentAt = undefined;
      status.textContent = `error: ${error.message}`;
    }
  }

  $('join').addEventListener('click', join);
  $('send').addEventListener('click', send);
  $('prompt').addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && !event.shiftKey) {
      event.preventDefault();
      void send();
    }
  });
  $('stop').addEventListener('click', () => void [...open].at(-1)?.stream.cancel());
  if (saved.conversationId) void join();
})();

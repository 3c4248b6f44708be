// The playground: join a conversation, send prompts, watch every member's generations stream in.
// Reloading re-joins (key and conversation are kept in localStorage) and the running generation
// is replayed from its first token, then continues live.
(() => {
  const $ = (name) => document.querySelector(`[name=${name}]`);
  const status = document.getElementById('status');
  const messages = document.getElementById('messages');
  const saved = JSON.parse(localStorage.getItem('tokenwire-playground') || '{}');
  let client;
  let conversationId;
  let running; // the stream the Stop button cancels

  $('key').value = saved.key || '';
  if (saved.conversationId) $('conversation').value = saved.conversationId;

  async function loadModels(key) {
    const response = await fetch('/v1/models', { headers: key ? { authorization: `Bearer ${key}` } : {} });
    if (!response.ok) throw new Error((await response.json()).error.message);
    const { data } = await response.json();
    $('model').replaceChildren(...data.map((m) => new Option(m.id, m.id)));
    if (saved.model && data.some((m) => m.id === saved.model)) $('model').value = saved.model;
  }

  /** One block per generation; it follows the stream's events. */
  function show(stream) {
    const block = document.createElement('div');
    block.className = 'message';
    block.dataset.jobId = stream.jobId;
    block.dataset.status = 'streaming';
    const meta = document.createElement('div');
    meta.className = 'meta';
    meta.textContent = `assistant · ${stream.jobId.slice(0, 8)} · streaming`;
    const text = document.createElement('div');
    text.className = 'text';
    block.append(meta, text);
    messages.append(block);
    running = stream;
    $('stop').disabled = false;
    const render = (event) => {
      text.textContent = stream.text;
      if (event.type === 'done' || event.type === 'error' || event.type === 'cancelled') {
        block.dataset.status = event.type;
        meta.textContent = `assistant · ${stream.jobId.slice(0, 8)} · ${event.type}${event.type === 'error' ? `: ${event.message}` : ''}`;
        if (running === stream) $('stop').disabled = true;
      }
    };
    void (async () => {
      for await (const event of stream) render(event); // from the first event, then live
    })().catch((error) => {
      block.dataset.status = 'error';
      meta.textContent = `assistant · ${error.message}`;
    });
  }

  async function join() {
    const key = $('key').value.trim();
    conversationId = $('conversation').value.trim() || 'lobby';
    status.textContent = 'connecting…';
    try {
      await loadModels(key);
      client?.close();
      client = new Tokenwire.TokenwireClient({ baseUrl: location.origin, apiKey: key || undefined });
      messages.replaceChildren();
      await client.join(conversationId, show);
      localStorage.setItem('tokenwire-playground', JSON.stringify({ key, conversationId, model: $('model').value }));
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
    const model = $('model').value;
    localStorage.setItem('tokenwire-playground', JSON.stringify({ key: $('key').value.trim(), conversationId, model }));
    try {
      // Every member, this tab included, receives it through the room's `generation` announcement.
      await client.generate({ conversationId, model, messages: [{ role: 'user', content: prompt }] });
    } catch (error) {
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
  $('stop').addEventListener('click', () => void running?.cancel());
  if (saved.conversationId) void join();
})();

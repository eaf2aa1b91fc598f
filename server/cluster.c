/* The shared log of several fsd: NATS JetStream. See cluster.h.
 *
 * Threads: the NATS client reads its socket and runs our message callbacks
 * on threads of its own; those callbacks only queue the message and wake
 * the loop (uv_async), which applies it to the context. Everything that
 * waits for a NATS answer (a publish and its ack, the release of a lock)
 * runs on one publisher thread, in the order the loop queued it; a lock is
 * taken on the threadpool job of the commit itself. So the loop never
 * waits for NATS. (The client's libuv adapter would move the socket onto
 * the loop, but every request that waits for a reply would then still need
 * a thread of its own, and would deadlock if made on the loop.) */
#include "cluster.h"

#include <fsproto/fsproto.h>
#include <nats/nats.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "log.h"
#include "mem.h"

#define SUBJECT_MAX 160                   /* "<stream>.events" */
#define LOCK_PREFIX_MAX (SUBJECT_MAX + 8) /* "$KV.<stream>_LOCKS." */
#define KEY_LEN 17                        /* "p" and 16 hex digits */
#define ID_MAX 128                        /* a Nats-Msg-Id */
#define STAMP_LEN 16                      /* inode and ctime after an EVENT */
#define OUT_MAX 65536u                    /* items the publisher may hold */
#define OUT_BATCH 256u               /* items the publisher takes at once */
#define DUP_WINDOW_NS 120000000000LL /* de-duplication window: 2 minutes */
#define JS_WAIT_MS 2000              /* a JetStream request gives up */
#define PUBLISH_TRY_MS 60000         /* an event is retried this long */
#define CATCH_UP_MS 60000            /* start gives up replaying */
#define HEARTBEAT_NS 1000000000LL    /* the consumer's idle heartbeat */

enum out_type { OUT_EVENT, OUT_NOTICE, OUT_UNLOCK, OUT_PASS };

/* A job for the publisher thread. */
struct out_item {
  struct out_item *next;
  uint8_t type;    /* enum out_type */
  char id[ID_MAX]; /* the event's Nats-Msg-Id, or the lock key to free */
  size_t len;      /* bytes in data */
  uint8_t data[];  /* an EVENT frame (seq 0), a notice's text, or the
                      ticket of the wait an OUT_PASS lets go */
};

struct fsd_cluster {
  struct fsd_ctx_log log; /* first: ctx->log points here */
  struct fsd_ctx *ctx;
  struct fsd_watch *watch; /* told of each change the log applies */
  uv_async_t wake;         /* the NATS threads have queued messages */
  int wake_open;           /* wake is initialised and not closing */
  natsConnection *nc;
  jsCtx *js;
  kvStore *locks; /* <stream>_LOCKS: one key per name being committed */
  natsSubscription *events, *notices;
  const char *node;
  char ev_subject[SUBJECT_MAX];
  char notice_subject[SUBJECT_MAX];
  char lock_prefix[LOCK_PREFIX_MAX]; /* "$KV.<stream>_LOCKS." */
  uint64_t consumed; /* stream seq of the last event taken from the queue */
  /* Waits for the log (fsd_ctx_log.wait), oldest first; loop only. */
  struct fsd_list waits;
  uint64_t tickets; /* the last ticket given */
  /* Messages from the NATS threads, under in_mu. */
  uv_mutex_t in_mu;
  uv_cond_t in_cv; /* signalled on each message, for the replay at start */
  natsMsg **in;
  size_t in_n, in_cap;
  int in_closed;   /* stopping: messages are dropped, not queued */
  uint64_t passed; /* the publisher got this far among the waits */
  /* The publisher's queue, under out_mu. */
  uv_mutex_t out_mu;
  uv_cond_t out_cv;
  struct out_item *out_head, *out_tail;
  size_t out_n;
  int out_stop; /* finish what is queued, then end */
  uv_thread_t publisher;
  int publisher_running;
  atomic_int async_failed; /* a publish of the current batch failed */
  atomic_int closing;      /* fsd stops: a disconnection is no news */
};

static struct fsd_cluster *of_log(struct fsd_ctx_log *log) {
  return (struct fsd_cluster *)log;
}

static int64_t now_ms(void) {
  return (int64_t)(uv_hrtime() / 1000000u);
}

static const char *nats_error(natsStatus s) {
  const char *e = nats_GetLastError(NULL);
  return e != NULL && *e != '\0' ? e : natsStatus_GetText(s);
}

/* The lock key of a name: its hash, since key names allow only a few
 * characters (two names with one hash merely wait for each other). */
static void lock_key(const char *name, char key[KEY_LEN + 1]) {
  snprintf(key, KEY_LEN + 1, "p%016llx",
           (unsigned long long)XXH3_64bits(name, strlen(name)));
}

static void put_u64(uint8_t *p, uint64_t v) {
  for (int i = 7; i >= 0; i--, v >>= 8)
    p[i] = (uint8_t)v;
}

static uint64_t get_u64(const uint8_t *p) {
  uint64_t v = 0;

  for (int i = 0; i < 8; i++)
    v = v << 8 | p[i];
  return v;
}

/* --- the publisher thread --- */

static int queue_out(struct fsd_cluster *c, uint8_t type, const char *id,
                     const void *data, size_t len) {
  struct out_item *it;
  size_t queued;

  uv_mutex_lock(&c->out_mu);
  queued = c->out_n;
  uv_mutex_unlock(&c->out_mu);
  if (queued >= OUT_MAX) {
    fsd_error("cluster: %zu messages wait for NATS, dropping one", queued);
    return UV_ENOBUFS;
  }
  it = fsd_malloc(sizeof(*it) + len);
  if (it == NULL) {
    fsd_error("cluster: out of memory, a message is lost");
    return UV_ENOMEM;
  }
  it->next = NULL;
  it->type = type;
  snprintf(it->id, sizeof(it->id), "%s", id);
  it->len = len;
  if (len > 0)
    memcpy(it->data, data, len);
  uv_mutex_lock(&c->out_mu);
  if (c->out_tail != NULL)
    c->out_tail->next = it;
  else
    c->out_head = it;
  c->out_tail = it;
  c->out_n++;
  uv_cond_signal(&c->out_cv);
  uv_mutex_unlock(&c->out_mu);
  return 0;
}

static int stopping(struct fsd_cluster *c) {
  int stop;

  uv_mutex_lock(&c->out_mu);
  stop = c->out_stop;
  uv_mutex_unlock(&c->out_mu);
  return stop;
}

/* Publishes one event, retrying while NATS is away: the server already
 * applied it to its register, and the others learn of it only this way.
 * The message id makes a retry of a publish that did land a no-op. */
static void publish_event(struct fsd_cluster *c, const struct out_item *it) {
  int64_t deadline = now_ms() + PUBLISH_TRY_MS;
  jsPubOptions po;
  jsPubAck *ack = NULL;
  jsErrCode jerr = 0;
  natsStatus s;

  jsPubOptions_Init(&po);
  po.MsgId = it->id;
  po.MaxWait = JS_WAIT_MS;
  for (;;) {
    s = js_Publish(&ack, c->js, c->ev_subject, it->data, (int)it->len, &po,
                   &jerr);
    if (s == NATS_OK) {
      fsd_debug("cluster: published %s as seq %llu%s", it->id,
                (unsigned long long)ack->Sequence,
                ack->Duplicate ? " (duplicate)" : "");
      jsPubAck_Destroy(ack);
      return;
    }
    if (stopping(c) || now_ms() > deadline) {
      fsd_error("cluster: an event is lost, cannot publish it: %s",
                nats_error(s));
      return;
    }
    nats_Sleep(100);
  }
}

/* Deletes a lock's key as kvStore_Delete() does (a message with the
 * header "KV-Operation: DEL" on the key's subject), without waiting for
 * its ack: a batch's releases then cost one round trip to NATS, not one
 * each. (A later batch's js_PublishAsyncComplete() waits for them too.) */
static natsStatus unlock_async(struct fsd_cluster *c, const char *key) {
  char subject[LOCK_PREFIX_MAX + ID_MAX];
  natsMsg *m = NULL;
  natsStatus s;

  snprintf(subject, sizeof(subject), "%s%s", c->lock_prefix, key);
  s = natsMsg_Create(&m, subject, NULL, NULL, 0);
  if (s == NATS_OK)
    s = natsMsgHeader_Set(m, "KV-Operation", "DEL");
  if (s == NATS_OK)
    s = js_PublishMsgAsync(c->js, &m, NULL);
  natsMsg_Destroy(m); /* NULL once the library took it */
  return s;
}

static void run_item(struct fsd_cluster *c, const struct out_item *it) {
  natsStatus s;

  switch (it->type) {
  case OUT_EVENT:
    publish_event(c, it);
    break;
  case OUT_NOTICE:
    s = natsConnection_Publish(c->nc, c->notice_subject, it->data,
                               (int)it->len);
    if (s != NATS_OK)
      fsd_warn("cluster: a notice is lost: %s", nats_error(s));
    break;
  case OUT_PASS:
    /* Everything queued before is published: the waits up to this one
     * are over. */
    uv_mutex_lock(&c->in_mu);
    memcpy(&c->passed, it->data, sizeof(c->passed));
    if (c->wake_open)
      uv_async_send(&c->wake);
    uv_mutex_unlock(&c->in_mu);
    break;
  case OUT_UNLOCK:
    /* A failure leaves the lock to expire (FSD_CLUSTER_LOCK_TTL_S). */
    s = unlock_async(c, it->id);
    if (s != NATS_OK)
      fsd_warn("cluster: cannot release a lock: %s", nats_error(s));
    break;
  default:
    break;
  }
}

/* NATS thread: an asynchronous publish failed or timed out: an event of
 * the current batch (which is then published again), or a lock's release
 * (the lock then expires). */
static void on_async_error(jsCtx *js, jsPubAckErr *pae, void *closure) {
  struct fsd_cluster *c = closure;
  const char *subject = pae->Msg != NULL ? natsMsg_GetSubject(pae->Msg) : "";

  (void)js;
  if (strncmp(subject, c->lock_prefix, strlen(c->lock_prefix)) == 0)
    fsd_warn("cluster: cannot release a lock: %s",
             pae->ErrText != NULL ? pae->ErrText
                                  : natsStatus_GetText(pae->Err));
  else
    atomic_store(&c->async_failed, 1);
}

/* Publishes the events of a batch, in order, without waiting for each
 * one's ack: one connection keeps their order, and the acks are awaited
 * together. Should any fail (NATS going away), they are all published
 * again one at a time, retrying: those that landed are dropped by their
 * message ids. A change is answered only after its batch (see log_wait),
 * so a client's next change always comes in a later batch. */
static void publish_batch(struct fsd_cluster *c, struct out_item *batch) {
  struct out_item *first = NULL;
  jsPubOptions po;
  int events = 0, failed = 0;

  for (struct out_item *it = batch; it != NULL; it = it->next)
    if (it->type == OUT_EVENT && events++ == 0)
      first = it;
  /* One event alone goes the synchronous way: its ack comes sooner than
   * through the asynchronous machinery (about half the time here). */
  if (events <= 1) {
    if (first != NULL)
      publish_event(c, first);
    return;
  }
  atomic_store(&c->async_failed, 0);
  for (struct out_item *it = first; it != NULL && !failed; it = it->next) {
    if (it->type != OUT_EVENT)
      continue;
    jsPubOptions_Init(&po);
    po.MsgId = it->id;
    po.MaxWait = JS_WAIT_MS;
    if (js_PublishAsync(c->js, c->ev_subject, it->data, (int)it->len, &po) !=
        NATS_OK)
      failed = 1;
  }
  jsPubOptions_Init(&po);
  po.MaxWait = JS_WAIT_MS;
  if (failed || js_PublishAsyncComplete(c->js, &po) != NATS_OK ||
      atomic_load(&c->async_failed)) {
    for (struct out_item *it = batch; it != NULL; it = it->next)
      if (it->type == OUT_EVENT)
        publish_event(c, it);
  } else {
    fsd_debug("cluster: published %d events", events);
  }
}

/* Takes up to OUT_BATCH items at a time: their events are published
 * together (publish_batch); then the pass marks let their waits go, and
 * only then the other items run in order (a notice, a lock's release). */
static void publisher_main(void *arg) {
  struct fsd_cluster *c = arg;
  struct out_item *batch, *it, **tail;

  uv_mutex_lock(&c->out_mu);
  for (;;) {
    while (c->out_head == NULL && !c->out_stop)
      uv_cond_wait(&c->out_cv, &c->out_mu);
    if (c->out_head == NULL)
      break;
    batch = c->out_head;
    tail = &batch;
    for (unsigned n = 0; *tail != NULL && n < OUT_BATCH; n++) {
      tail = &(*tail)->next;
      c->out_n--;
    }
    c->out_head = *tail;
    if (c->out_head == NULL)
      c->out_tail = NULL;
    *tail = NULL;
    uv_mutex_unlock(&c->out_mu);
    publish_batch(c, batch);
    for (it = batch; it != NULL; it = it->next)
      if (it->type == OUT_PASS)
        run_item(c, it);
    while ((it = batch) != NULL) {
      batch = it->next;
      if (it->type != OUT_EVENT && it->type != OUT_PASS)
        run_item(c, it);
      fsd_free(it);
    }
    uv_mutex_lock(&c->out_mu);
  }
  uv_mutex_unlock(&c->out_mu);
}

/* --- the fsd_ctx_log operations --- */

/* Encodes ev as an EVENT frame (seq 0: the stream numbers it), followed by
 * the version's inode and ctime (16 bytes, big-endian), and queues it. Its
 * id names the change (name, version before, version after), so that
 * servers which all notice the same change beside fsd publish it once. */
static void log_append(struct fsd_ctx_log *log, const struct fsd_event *ev,
                       const struct fsd_stamp *now,
                       const struct fsd_stamp *prev) {
  struct fsd_cluster *c = of_log(log);
  uint8_t frame[FSD_PUSH_MAX + STAMP_LEN];
  char id[ID_MAX];
  struct fsp_msg m;
  ssize_t n;

  fsd_event_msg(ev, &m);
  /* Version 3's layout: it carries paths, types and renames. */
  n = fsp_msg_encode_v(frame, FSD_PUSH_MAX, FSP_TREE_VERSION, &m);
  if (n < 0) {
    fsd_error("cluster: cannot encode an event: %s", fsp_strerror((int)n));
    return;
  }
  put_u64(frame + n, now != NULL ? now->ino : 0);
  put_u64(frame + n + 8, now != NULL ? (uint64_t)now->ctime_ns : 0);
  /* The version before is named by size and mtime only: a server that
   * learned it from the stream knows its inode and ctime, one that found
   * it on disk too, but one started since may not. */
  /* A folder is named by its inode alone: its mtime moves with every
   * entry made in it, so two servers see it at different ones. */
  snprintf(id, sizeof(id), "%016llx-%u-%llu-%lld-%llx-%lld-%llu-%lld",
           (unsigned long long)XXH3_64bits(ev->path, ev->path_len),
           (unsigned)ev->kind == FSP_EV_REMOVED, (unsigned long long)ev->size,
           (long long)(now != NULL && ev->type != FSP_TYPE_FOLDER ? ev->mtime_ns
                                                                  : 0),
           (unsigned long long)(now != NULL ? now->ino : 0),
           (long long)(now != NULL ? now->ctime_ns : 0),
           (unsigned long long)prev->size, (long long)prev->mtime_ns);
  queue_out(c, OUT_EVENT, id, frame, (size_t)n + STAMP_LEN);
}

static void log_notify(struct fsd_ctx_log *log, const char *text, size_t len) {
  queue_out(of_log(log), OUT_NOTICE, "", text, len);
}

/* Takes the name's key in the lock bucket: a create that fails while
 * another server holds it. Waits with growing pauses, up to a little more
 * than the lock's time to live, so that a dead server's lock runs out
 * first. */
static int log_lock(struct fsd_ctx_log *log, const char *name) {
  struct fsd_cluster *c = of_log(log);
  int64_t deadline = now_ms() + (FSD_CLUSTER_LOCK_TTL_S + 5) * 1000;
  char key[KEY_LEN + 1];
  int64_t pause = 1;
  uint64_t rev;
  natsStatus s;

  lock_key(name, key);
  for (;;) {
    if (!atomic_load(&log->writable))
      return UV_EAGAIN;
    s = kvStore_CreateString(&rev, c->locks, key, c->node);
    if (s == NATS_OK)
      return 0;
    if (natsConnection_Status(c->nc) != NATS_CONN_STATUS_CONNECTED)
      return UV_EAGAIN;
    if (now_ms() > deadline) {
      fsd_warn("cluster: %s stayed locked by another server", name);
      return UV_ETIMEDOUT;
    }
    nats_Sleep(pause);
    pause = pause < 32 ? pause * 2 : 50;
  }
}

static void log_unlock(struct fsd_ctx_log *log, const char *name) {
  char key[KEY_LEN + 1];

  lock_key(name, key);
  queue_out(of_log(log), OUT_UNLOCK, key, NULL, 0);
}

/* --- consuming --- */

/* NATS thread: queues a message for the loop. */
static void on_message(natsConnection *nc, natsSubscription *sub, natsMsg *msg,
                       void *closure) {
  struct fsd_cluster *c = closure;
  natsMsg **grown;

  (void)nc;
  (void)sub;
  uv_mutex_lock(&c->in_mu);
  if (c->in_closed) {
    uv_mutex_unlock(&c->in_mu);
    natsMsg_Destroy(msg);
    return;
  }
  if (c->in_n == c->in_cap) {
    size_t cap = c->in_cap ? c->in_cap * 2 : 256;
    grown = fsd_realloc(c->in, cap * sizeof(*grown));
    if (grown == NULL) {
      uv_mutex_unlock(&c->in_mu);
      fsd_error("cluster: out of memory, an event is skipped");
      natsMsg_Destroy(msg);
      return;
    }
    c->in = grown;
    c->in_cap = cap;
  }
  c->in[c->in_n++] = msg;
  uv_cond_signal(&c->in_cv);
  if (c->wake_open)
    uv_async_send(&c->wake);
  uv_mutex_unlock(&c->in_mu);
}

/* Applies one event of the stream to the context. */
static void apply_event(struct fsd_cluster *c, natsMsg *msg) {
  const uint8_t *data = (const uint8_t *)natsMsg_GetData(msg);
  int len = natsMsg_GetDataLength(msg);
  jsMsgMetaData *meta = NULL;
  struct fsd_stamp st;
  struct fsd_event ev;
  struct fsp_frame f;
  struct fsp_msg m;
  ssize_t n;

  if (natsMsg_GetMetaData(&meta, msg) != NATS_OK) {
    fsd_warn("cluster: a message without stream metadata");
    return;
  }
  memset(&ev, 0, sizeof(ev));
  ev.seq = meta->Sequence.Stream;
  jsMsgMetaData_Destroy(meta);
  if (ev.seq > c->consumed)
    c->consumed = ev.seq;
  n = fsp_frame_decode(data, len > 0 ? (size_t)len : 0, FSD_PUSH_MAX, &f);
  if (n <= 0 || (n != len && n + STAMP_LEN != len) ||
      (fsp_msg_decode_v(&f, FSP_TREE_VERSION, &m) != 0 &&
       fsp_msg_decode(&f, &m) != 0) ||
      m.op != FSP_OP_EVENT) {
    /* Perhaps a kind of event this version does not know: watchers of
     * this server see a gap, and RESYNC when they ask for it. */
    fsd_warn("cluster: event %llu is not one this server reads",
             (unsigned long long)ev.seq);
    return;
  }
  ev.kind = m.u.event.kind;
  ev.size = m.u.event.file.size;
  ev.mtime_ns = m.u.event.file.mtime_ns;
  /* Events of servers from before folders have no type: files. */
  ev.type = m.u.event.file.type != 0 ? m.u.event.file.type : FSP_TYPE_FILE;
  ev.path_len = (uint16_t)m.u.event.file.name.len;
  ev.path = m.u.event.file.name.ptr;
  ev.from_len = (uint16_t)m.u.event.from.len;
  ev.from = m.u.event.from.len > 0 ? m.u.event.from.ptr : "";
  st.size = ev.size;
  st.mtime_ns = ev.mtime_ns;
  st.ino = n != len ? get_u64(data + n) : 0;
  st.ctime_ns = n != len ? (int64_t)get_u64(data + n + 8) : 0;
  /* A stat of the name that looked before this change must not undo it. */
  fsd_watch_own_change(c->watch, ev.path, ev.path_len);
  if (fsd_ctx_apply(c->ctx, &ev, &st) < 0)
    fsd_error("cluster: out of memory applying event %llu",
              (unsigned long long)ev.seq);
}

static void apply_message(struct fsd_cluster *c, natsMsg *msg) {
  if (strcmp(natsMsg_GetSubject(msg), c->notice_subject) == 0) {
    int len = natsMsg_GetDataLength(msg);

    if (len > 0 && (size_t)len <= FSP_NOTICE_MAX)
      fsd_ctx_relay(c->ctx, natsMsg_GetData(msg), (size_t)len);
  } else {
    apply_event(c, msg);
  }
  natsMsg_Destroy(msg);
}

/* Takes every queued message and applies it, in the order received. */
static void drain(struct fsd_cluster *c) {
  natsMsg **batch;
  size_t n;

  uv_mutex_lock(&c->in_mu);
  batch = c->in;
  n = c->in_n;
  c->in = NULL;
  c->in_n = c->in_cap = 0;
  uv_mutex_unlock(&c->in_mu);
  for (size_t i = 0; i < n; i++)
    apply_message(c, batch[i]);
  fsd_free(batch);
}

/* Ends the waits the publisher passed (all of them when stopping). */
static void pass_waits(struct fsd_cluster *c, int all) {
  uint64_t passed;

  uv_mutex_lock(&c->in_mu);
  passed = c->passed;
  uv_mutex_unlock(&c->in_mu);
  while (!fsd_list_empty(&c->waits)) {
    struct fsd_log_wait *w =
        fsd_container_of(c->waits.next, struct fsd_log_wait, link);
    if (!all && w->ticket > passed)
      break;
    fsd_list_remove(&w->link);
    w->done(w);
  }
}

static void on_wake(uv_async_t *a) {
  drain(a->data);
  pass_waits(a->data, 0);
}

/* The loop waits until the publisher has handled everything queued so
 * far; see ctx.h. */
static void log_wait(struct fsd_ctx_log *log, struct fsd_log_wait *w) {
  struct fsd_cluster *c = of_log(log);
  uint64_t ticket = ++c->tickets;

  if (!c->wake_open ||
      queue_out(c, OUT_PASS, "", &ticket, sizeof(ticket)) != 0) {
    w->done(w); /* stopping, or the queue is full: the order is lost */
    return;
  }
  w->ticket = ticket;
  fsd_list_push(&c->waits, &w->link);
}

/* --- connection state --- */

static void on_disconnected(natsConnection *nc, void *closure) {
  struct fsd_cluster *c = closure;

  (void)nc;
  atomic_store(&c->log.writable, 0);
  if (!atomic_load(&c->closing))
    fsd_warn("cluster: NATS unreachable, uploads and deletions are refused");
}

static void on_reconnected(natsConnection *nc, void *closure) {
  struct fsd_cluster *c = closure;

  (void)nc;
  atomic_store(&c->log.writable, 1);
  fsd_info("cluster: NATS is back, writes resume");
}

/* --- start and stop --- */

/* The servers of a comma separated list. */
static natsStatus set_servers(natsOptions *o, const char *urls) {
  const char *v[FSD_CLUSTER_MAX_URLS];
  char *copy = fsd_malloc(strlen(urls) + 1), *p, *save = NULL;
  natsStatus s;
  int n = 0;

  if (copy == NULL)
    return NATS_NO_MEMORY;
  strcpy(copy, urls);
  for (p = strtok_r(copy, ",", &save); p != NULL && n < FSD_CLUSTER_MAX_URLS;
       p = strtok_r(NULL, ",", &save))
    v[n++] = p;
  s = n > 0 ? natsOptions_SetServers(o, v, n) : NATS_INVALID_ARG;
  fsd_free(copy); /* the options keep copies */
  return s;
}

static natsStatus connect_nats(struct fsd_cluster *c,
                               const struct fsd_cluster_config *cfg) {
  natsOptions *o = NULL;
  natsStatus s;

  s = natsOptions_Create(&o);
  if (s == NATS_OK)
    s = set_servers(o, cfg->urls);
  if (s == NATS_OK)
    s = natsOptions_SetName(o, cfg->node);
  if (s == NATS_OK)
    s = natsOptions_SetTimeout(o, JS_WAIT_MS);
  /* Never give up: writes wait for NATS, reads go on meanwhile. */
  if (s == NATS_OK)
    s = natsOptions_SetMaxReconnect(o, -1);
  if (s == NATS_OK)
    s = natsOptions_SetReconnectWait(o, 250);
  /* Notice a dead server in seconds, not minutes. */
  if (s == NATS_OK)
    s = natsOptions_SetPingInterval(o, 2000);
  if (s == NATS_OK)
    s = natsOptions_SetMaxPingsOut(o, 2);
  if (s == NATS_OK)
    s = natsOptions_SetDisconnectedCB(o, on_disconnected, c);
  if (s == NATS_OK)
    s = natsOptions_SetReconnectedCB(o, on_reconnected, c);
  if (s == NATS_OK && cfg->creds != NULL)
    s = natsOptions_SetUserCredentialsFromFiles(o, cfg->creds, NULL);
  if (s == NATS_OK && cfg->ca != NULL) {
    s = natsOptions_SetSecure(o, true);
    if (s == NATS_OK)
      s = natsOptions_LoadCATrustedCertificates(o, cfg->ca);
  }
  if (s == NATS_OK)
    s = natsConnection_Connect(&c->nc, o);
  natsOptions_Destroy(o);
  return s;
}

/* Finds the stream, or creates it; fills the epoch, the last seq and
 * whether it is empty. */
static natsStatus open_stream(struct fsd_cluster *c,
                              const struct fsd_cluster_config *cfg,
                              uint64_t *epoch, uint64_t *last, int *empty) {
  const char *subjects[1] = {c->ev_subject};
  jsStreamInfo *si = NULL;
  jsStreamConfig sc;
  jsErrCode jerr = 0;
  natsStatus s;

  s = js_GetStreamInfo(&si, c->js, cfg->stream, NULL, &jerr);
  if (s == NATS_NOT_FOUND) {
    jsStreamConfig_Init(&sc);
    sc.Name = cfg->stream;
    sc.Subjects = subjects;
    sc.SubjectsLen = 1;
    sc.Storage = js_FileStorage;
    sc.Replicas = cfg->replicas;
    sc.MaxAge = (int64_t)cfg->retention_s * 1000000000LL;
    /* The window may not be longer than the retention. */
    sc.Duplicates =
        sc.MaxAge > 0 && sc.MaxAge < DUP_WINDOW_NS ? sc.MaxAge : DUP_WINDOW_NS;
    s = js_AddStream(&si, c->js, &sc, NULL, &jerr);
    if (s != NATS_OK) /* another server created it first */
      s = js_GetStreamInfo(&si, c->js, cfg->stream, NULL, &jerr);
  }
  if (s != NATS_OK)
    return s;
  /* The creation time names this stream: a stream deleted and made anew
   * is another history, and watchers must RESYNC. */
  *epoch = si->Created > 0 ? (uint64_t)si->Created : 1;
  *last = si->State.LastSeq;
  *empty = si->State.Msgs == 0;
  jsStreamInfo_Destroy(si);
  return NATS_OK;
}

static natsStatus open_locks(struct fsd_cluster *c,
                             const struct fsd_cluster_config *cfg) {
  char bucket[SUBJECT_MAX];
  kvConfig kc;
  natsStatus s;

  snprintf(bucket, sizeof(bucket), "%s_LOCKS", cfg->stream);
  snprintf(c->lock_prefix, sizeof(c->lock_prefix), "$KV.%s.", bucket);
  s = js_KeyValue(&c->locks, c->js, bucket);
  if (s == NATS_NOT_FOUND) {
    kvConfig_Init(&kc);
    kc.Bucket = bucket;
    kc.History = 1;
    kc.TTL = (int64_t)FSD_CLUSTER_LOCK_TTL_S * 1000000000LL;
    kc.Replicas = (int)cfg->replicas;
    s = js_CreateKeyValue(&c->locks, c->js, &kc);
    if (s != NATS_OK)
      s = js_KeyValue(&c->locks, c->js, bucket);
  }
  return s;
}

/* The stream and the lock bucket. A NATS cluster that is starting has no
 * JetStream leader yet and answers nothing: wait for it a while. */
static natsStatus open_js(struct fsd_cluster *c,
                          const struct fsd_cluster_config *cfg, uint64_t *epoch,
                          uint64_t *last, int *empty) {
  int64_t deadline = now_ms() + CATCH_UP_MS;
  int said = 0;
  natsStatus s;

  for (;;) {
    s = open_stream(c, cfg, epoch, last, empty);
    if (s == NATS_OK)
      s = open_locks(c, cfg);
    if (s == NATS_OK || now_ms() > deadline)
      return s;
    if (!said++)
      fsd_info("cluster: waiting for JetStream: %s", nats_error(s));
    nats_Sleep(500);
  }
}

/* An ordered consumer: NATS replays the stream to us in order, from the
 * first of the last FSD_RING_SIZE events (those a "since" may ask for; the
 * register of older names comes from the disk, which their last events
 * describe), and resumes where it stopped after a reconnect. */
static natsStatus subscribe(struct fsd_cluster *c,
                            const struct fsd_cluster_config *cfg,
                            uint64_t last) {
  jsSubOptions so;
  jsErrCode jerr = 0;
  natsStatus s;

  jsSubOptions_Init(&so);
  so.Stream = cfg->stream;
  so.Ordered = true;
  so.Config.DeliverPolicy = js_DeliverByStartSequence;
  so.Config.OptStartSeq = last >= FSD_RING_SIZE ? last - FSD_RING_SIZE + 1 : 1;
  /* Heartbeats tell a consumer lost with its NATS server (ordered
   * consumers live on one) within seconds; the client then makes a new
   * one from the next seq. */
  so.Config.Heartbeat = HEARTBEAT_NS;
  s = js_Subscribe(&c->events, c->js, c->ev_subject, on_message, c, NULL, &so,
                   &jerr);
  if (s == NATS_OK)
    s = natsConnection_Subscribe(&c->notices, c->nc, c->notice_subject,
                                 on_message, c);
  return s;
}

/* The stream's last seq now, and whether it holds no event (all past
 * retention). */
static natsStatus stream_state(struct fsd_cluster *c, const char *stream,
                               uint64_t *last, int *empty) {
  jsStreamInfo *si = NULL;
  jsErrCode jerr = 0;
  natsStatus s = js_GetStreamInfo(&si, c->js, stream, NULL, &jerr);

  if (s != NATS_OK)
    return s;
  *last = si->State.LastSeq;
  *empty = si->State.Msgs == 0;
  jsStreamInfo_Destroy(si);
  return NATS_OK;
}

/* Applies the stream up to its last event before the server listens.
 * When nothing comes for a second, the stream is asked again: its events
 * may have gone past retention meanwhile. */
static int catch_up(struct fsd_cluster *c, const char *stream, uint64_t last,
                    int empty) {
  int64_t deadline = now_ms() + CATCH_UP_MS;
  int idle;

  while (!empty && c->consumed < last) {
    uv_mutex_lock(&c->in_mu);
    idle = c->in_n == 0 &&
           uv_cond_timedwait(&c->in_cv, &c->in_mu, 1000000000ull) != 0;
    uv_mutex_unlock(&c->in_mu);
    drain(c);
    if (!idle)
      continue;
    if (now_ms() > deadline ||
        stream_state(c, stream, &last, &empty) != NATS_OK) {
      fsd_error("cluster: replay stopped at %llu of %llu",
                (unsigned long long)c->consumed, (unsigned long long)last);
      return UV_ETIMEDOUT;
    }
  }
  /* Events past retention: "since" before them gets RESYNC. */
  if (c->ctx->seq < last && empty)
    c->ctx->seq = last;
  return 0;
}

static int setup(struct fsd_cluster *c, const struct fsd_cluster_config *cfg,
                 uv_loop_t *loop) {
  uint64_t epoch = 0, last = 0;
  int empty = 0;
  jsOptions jo;
  natsStatus s;
  int r;

  s = connect_nats(c, cfg);
  if (s != NATS_OK) {
    fsd_error("cluster: cannot connect to %s: %s", cfg->urls, nats_error(s));
    return UV_ECONNREFUSED;
  }
  jsOptions_Init(&jo);
  jo.Wait = JS_WAIT_MS;
  jo.PublishAsync.ErrHandler = on_async_error;
  jo.PublishAsync.ErrHandlerClosure = c;
  s = natsConnection_JetStream(&c->js, c->nc, &jo);
  if (s == NATS_OK)
    s = open_js(c, cfg, &epoch, &last, &empty);
  if (s == NATS_OK)
    s = subscribe(c, cfg, last);
  if (s != NATS_OK) {
    fsd_error("cluster: JetStream stream %s: %s", cfg->stream, nats_error(s));
    return UV_EPROTO;
  }
  c->ctx->epoch = epoch;
  r = catch_up(c, cfg->stream, last, empty);
  if (r != 0)
    return r;
  r = uv_async_init(loop, &c->wake, on_wake);
  if (r != 0)
    return r;
  c->wake.data = c;
  uv_mutex_lock(&c->in_mu);
  c->wake_open = 1;
  uv_mutex_unlock(&c->in_mu);
  uv_async_send(&c->wake); /* what came after the replay */
  r = uv_thread_create(&c->publisher, publisher_main, c);
  if (r != 0)
    return r;
  c->publisher_running = 1;
  atomic_store(&c->log.writable, 1);
  c->ctx->log = &c->log;
  fsd_info("cluster: node %s on stream %s, epoch %llu, caught up at seq %llu",
           cfg->node, cfg->stream, (unsigned long long)epoch,
           (unsigned long long)c->ctx->seq);
  return 0;
}

/* Starts the cluster; see cluster.h. */
int fsd_cluster_start(const struct fsd_cluster_config *cfg, uv_loop_t *loop,
                      struct fsd_ctx *ctx, struct fsd_watch *watch,
                      struct fsd_cluster **out) {
  struct fsd_cluster *c;
  int r;

  *out = NULL;
  c = fsd_calloc(1, sizeof(*c));
  if (c == NULL)
    return UV_ENOMEM;
  c->log.append = log_append;
  c->log.notify = log_notify;
  c->log.lock = log_lock;
  c->log.unlock = log_unlock;
  c->log.wait = log_wait;
  fsd_list_init(&c->waits);
  atomic_init(&c->log.writable, 0);
  c->ctx = ctx;
  c->watch = watch;
  c->node = cfg->node;
  snprintf(c->ev_subject, sizeof(c->ev_subject), "%s.events", cfg->stream);
  snprintf(c->notice_subject, sizeof(c->notice_subject), "%s.notices",
           cfg->stream);
  uv_mutex_init(&c->in_mu);
  uv_cond_init(&c->in_cv);
  uv_mutex_init(&c->out_mu);
  uv_cond_init(&c->out_cv);
  *out = c;
  r = setup(c, cfg, loop);
  if (r != 0)
    ctx->log = NULL;
  return r;
}

/* Stops consuming on the loop; see cluster.h. */
void fsd_cluster_close(struct fsd_cluster *c) {
  if (c == NULL)
    return;
  uv_mutex_lock(&c->in_mu);
  if (c->wake_open) {
    c->wake_open = 0;
    uv_close((uv_handle_t *)&c->wake, NULL);
  }
  uv_mutex_unlock(&c->in_mu);
  /* The changes still waiting are answered now; their events go out
   * before fsd_cluster_free() returns, as the publisher ends. */
  pass_waits(c, 1);
}

/* Publishes what is left, disconnects and frees; see cluster.h. */
void fsd_cluster_free(struct fsd_cluster *c) {
  if (c == NULL)
    return;
  c->ctx->log = NULL;
  if (c->publisher_running) {
    uv_mutex_lock(&c->out_mu);
    c->out_stop = 1;
    uv_cond_signal(&c->out_cv);
    uv_mutex_unlock(&c->out_mu);
    uv_thread_join(&c->publisher);
  }
  if (c->events != NULL) {
    natsSubscription_Unsubscribe(c->events);
    natsSubscription_Destroy(c->events);
  }
  if (c->notices != NULL) {
    natsSubscription_Unsubscribe(c->notices);
    natsSubscription_Destroy(c->notices);
  }
  kvStore_Destroy(c->locks);
  jsCtx_Destroy(c->js);
  atomic_store(&c->closing, 1);
  if (c->nc != NULL) {
    natsConnection_Close(c->nc);
    natsConnection_Destroy(c->nc);
  }
  /* Messages still queued, or delivered from now on, are dropped while
   * the library can still free them. */
  uv_mutex_lock(&c->in_mu);
  c->in_closed = 1;
  for (size_t i = 0; i < c->in_n; i++)
    natsMsg_Destroy(c->in[i]);
  fsd_free(c->in);
  c->in = NULL;
  c->in_n = c->in_cap = 0;
  uv_mutex_unlock(&c->in_mu);
  /* Waits for the library's threads, so no callback runs after this. */
  nats_CloseAndWait(2000);
  while (c->out_head != NULL) {
    struct out_item *it = c->out_head;
    c->out_head = it->next;
    fsd_free(it);
  }
  uv_cond_destroy(&c->in_cv);
  uv_mutex_destroy(&c->in_mu);
  uv_cond_destroy(&c->out_cv);
  uv_mutex_destroy(&c->out_mu);
  fsd_free(c);
}

/*
 * loadgen.c: the RADIUS load generator `npm run bench:compare` drives both servers with (campus-aaa and
 * FreeRADIUS). It does what bench/load-generator.ts does, with the same Plan (JSON in) and PhaseResult
 * (JSON out), the same request sequence for a seed and the same checks of every reply, but costs a small
 * fraction of a core, so that on a 2-core machine the instrument does not starve the servers it measures
 * or inflate the latencies it reports. `npm run bench:compare -- --generator node` runs the Node one.
 *
 * Build (bench/compare.ts does it at start, into bench/out/loadgen):
 *     cc -O2 -Wall -Wextra -o bench/out/loadgen bench/loadgen/loadgen.c -lcrypto -lm
 * (OpenSSL's libcrypto for MD5 only; HMAC-MD5 is built on it here. Debian: libssl-dev.)
 * Run:
 *     bench/out/loadgen --plan '<json Plan>'
 * stdout: a line {"started":true} when the measured part starts (compare.ts samples the server's CPU
 * then), then one line with the PhaseResult. Exit 0; 1 on a system error; 2 for a bad plan; 3 when the
 * watchdog fires (the phase took longer than phase.seconds + 30 s).
 *     bench/out/loadgen --cases N --seed S --accounts A
 * prints the first N auth cases of a seed ("i wrong office"), to check the PRNG against the Node one.
 *
 * Protocol: Access-Request with a random Request Authenticator, Message-Authenticator first (HMAC-MD5,
 * RFC 3579 §3.2), User-Password hidden (RFC 2865 §5.2); Accounting-Request with the MD5 Request
 * Authenticator of RFC 2866 §3 and no Message-Authenticator. Every reply is matched by (socket,
 * identifier), and its code, length, attributes, Response Authenticator and, when present,
 * Message-Authenticator are verified (for Accounting-Response over a zeroed authenticator field, as
 * FreeRADIUS and src/radius/packet.ts do); a reply that fails is a mismatch. No retransmission: a request
 * unanswered after 2 s is lost. A late reply to a request that already timed out is recognised by the
 * old Request Authenticator kept in the slot and ignored.
 *
 * I/O: one thread, 16 nonblocking UDP sockets connected to the server (256 identifiers each, so 2000
 * outstanding never waits for one), epoll, recvmmsg, and sendmmsg per socket for what one turn of the
 * loop produced. Closed loop: a worker's next request goes out on the socket its previous reply came in
 * on (the first ones round-robin); paced: round-robin, sent on a CLOCK_MONOTONIC schedule (in bursts
 * when late), never waiting for replies. Latency: CLOCK_MONOTONIC at the sendmmsg to CLOCK_MONOTONIC
 * after the recvmmsg that read the reply.
 *
 * generatorLoopDelayP99Ms (the field keeps its Node name): this generator's own lateness, the larger of
 * (a) the p99 of how long a reply sat in the socket before it was read (kernel receive timestamp,
 * SO_TIMESTAMPNS, to the read) and (b) in the paced phase, the p99 of how late each request left
 * against its schedule, or, for one held at the 2000-outstanding cap, against when room was made (the
 * number held is printed on stderr: then the server, not the sender, kept the offered rate from holding).
 */
#define _GNU_SOURCE
#define OPENSSL_API_COMPAT 0x10100000L
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <openssl/md5.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* The same values as bench/load-generator.ts (BENCH_SECRET, BENCH_PASSWORD, the two messages, ...). */
static const char SECRET[] = "bench-nas-secret";
static const char PASSWORD[] = "bench-Pass-1";
static const char WRONG_PASSWORD[] = "not-the-password";
static const char WRONG_PASSWORD_MESSAGE[] = "用户名或密码错误 / Wrong username or password";
static const char ARREARS_MESSAGE[] =
    "账户欠费：余额 10.00 元，需 20.00 元 / Account in arrears: balance 10.00 yuan, 20.00 needed";
#define CYCLE_SECONDS (30u * 86400u)
#define OUTSTANDING_CAP 2000
#define SOCKETS 16
#define TIMEOUT_NS 2000000000LL
#define SCAN_NS 10000000LL /* how often requests are checked for their 2 s timeout */
#define PACE_QUANTUM_NS 100000LL /* paced: wake at most every 100 us (a burst when more are due) */
#define BATCH 64           /* datagrams per recvmmsg */
#define MAX_PACKET 4096
#define REQ_MAX 256 /* our requests are ~110-140 octets */

/* RADIUS codes and attribute types used here. */
enum { ACCESS_REQUEST = 1, ACCESS_ACCEPT = 2, ACCESS_REJECT = 3, ACCOUNTING_REQUEST = 4, ACCOUNTING_RESPONSE = 5,
       ACCESS_CHALLENGE = 11 };
enum { A_USER_NAME = 1, A_USER_PASSWORD = 2, A_NAS_IP = 4, A_FRAMED_IP = 8, A_REPLY_MESSAGE = 18,
       A_SESSION_TIMEOUT = 27, A_CALLING_STATION = 31, A_ACCT_STATUS = 40, A_ACCT_IN_OCTETS = 42,
       A_ACCT_OUT_OCTETS = 43, A_ACCT_SESSION_ID = 44, A_ACCT_SESSION_TIME = 46, A_ACCT_TERMINATE = 49,
       A_MESSAGE_AUTHENTICATOR = 80, A_NAS_PORT_ID = 87 };

/* ------------------------------------------------------------------ small helpers */

static void die(int code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("loadgen: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  exit(code);
}

static int64_t mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int64_t real_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* A growable array of doubles (latencies in ms, lateness in ms). */
typedef struct {
  double *v;
  size_t n, cap;
} dvec;

static void dpush(dvec *a, double x) {
  if (a->n == a->cap) {
    a->cap = a->cap ? a->cap * 2 : 65536;
    a->v = realloc(a->v, a->cap * sizeof(double));
    if (!a->v) die(1, "out of memory");
  }
  a->v[a->n++] = x;
}

static int cmp_double(const void *x, const void *y) {
  double a = *(const double *)x, b = *(const double *)y;
  return a < b ? -1 : a > b;
}

/* As percentile() in load-generator.ts: sorted[min(n - 1, floor(p / 100 * n))], NaN when empty. */
static double percentile(const dvec *sorted, double p) {
  if (sorted->n == 0) return NAN;
  size_t k = (size_t)floor(p / 100.0 * (double)sorted->n);
  if (k > sorted->n - 1) k = sorted->n - 1;
  return sorted->v[k];
}

/* A growable string for the JSON output and the mismatch samples. */
typedef struct {
  char *s;
  size_t n, cap;
} sbuf;

static void sputn(sbuf *b, const char *s, size_t n) {
  if (b->n + n + 1 > b->cap) {
    while (b->n + n + 1 > b->cap) b->cap = b->cap ? b->cap * 2 : 4096;
    b->s = realloc(b->s, b->cap);
    if (!b->s) die(1, "out of memory");
  }
  memcpy(b->s + b->n, s, n);
  b->n += n;
  b->s[b->n] = 0;
}

static void sputs(sbuf *b, const char *s) { sputn(b, s, strlen(s)); }

static void sprintf_(sbuf *b, const char *fmt, ...) {
  char tmp[512];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  sputn(b, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

/* A JSON string literal of `n` bytes (UTF-8 passed through, control characters escaped). */
static void sjson(sbuf *b, const char *s, size_t n) {
  sputn(b, "\"", 1);
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '"' || c == '\\') {
      char e[2] = {'\\', (char)c};
      sputn(b, e, 2);
    } else if (c < 0x20) {
      sprintf_(b, "\\u%04x", c);
    } else {
      sputn(b, (const char *)&c, 1);
    }
  }
  sputn(b, "\"", 1);
}

static void snum(sbuf *b, double x) {
  if (isfinite(x)) sprintf_(b, "%.10g", x);
  else sputs(b, "null"); /* JSON.stringify(NaN) */
}

/* ------------------------------------------------------------------ the plan (a tiny JSON reader) */

typedef struct {
  char key[48];
  char str[256];
  double num;
  int is_str;
} jfield;

static jfield fields[64];
static int nfields;
static const char *jp;

static void jws(void) {
  while (*jp == ' ' || *jp == '\t' || *jp == '\n' || *jp == '\r') jp++;
}

static void jstring(char *out, size_t cap) {
  size_t n = 0;
  if (*jp != '"') die(2, "plan: string expected at '%.20s'", jp);
  jp++;
  while (*jp && *jp != '"') {
    char c = *jp++;
    if (c == '\\') {
      c = *jp++;
      switch (c) {
      case 'n': c = '\n'; break;
      case 't': c = '\t'; break;
      case 'r': c = '\r'; break;
      case 'b': c = '\b'; break;
      case 'f': c = '\f'; break;
      case 'u': die(2, "plan: \\u escapes are not supported"); break;
      case 0: die(2, "plan: unterminated string"); break;
      default: break; /* \" \\ \/ */
      }
    }
    if (n + 1 >= cap) die(2, "plan: string too long");
    out[n++] = c;
  }
  if (*jp != '"') die(2, "plan: unterminated string");
  jp++;
  out[n] = 0;
}

/* Reads one value; object members become fields named "a.b". */
static void jvalue(const char *path) {
  jws();
  if (*jp == '{') {
    jp++;
    jws();
    if (*jp == '}') {
      jp++;
      return;
    }
    for (;;) {
      char key[48], sub[48];
      jws();
      jstring(key, sizeof key);
      jws();
      if (*jp++ != ':') die(2, "plan: ':' expected");
      if (snprintf(sub, sizeof sub, "%s%s%s", path, *path ? "." : "", key) >= (int)sizeof sub) die(2, "plan: key too long");
      jvalue(sub);
      jws();
      if (*jp == ',') {
        jp++;
        continue;
      }
      if (*jp++ != '}') die(2, "plan: '}' expected");
      return;
    }
  }
  if (nfields == (int)(sizeof fields / sizeof fields[0])) die(2, "plan: too many fields");
  jfield *f = &fields[nfields++];
  snprintf(f->key, sizeof f->key, "%s", path);
  if (*jp == '"') {
    jstring(f->str, sizeof f->str);
    f->is_str = 1;
  } else if (!strncmp(jp, "true", 4) || !strncmp(jp, "null", 4)) {
    f->num = *jp == 't';
    jp += 4;
  } else if (!strncmp(jp, "false", 5)) {
    jp += 5;
  } else {
    char *end;
    f->num = strtod(jp, &end);
    if (end == jp) die(2, "plan: value expected at '%.20s'", jp);
    jp = end;
  }
}

static jfield *jget(const char *key, int required) {
  for (int i = 0; i < nfields; i++)
    if (!strcmp(fields[i].key, key)) return &fields[i];
  if (required) die(2, "plan: %s missing", key);
  return NULL;
}

static double jnum(const char *key) {
  jfield *f = jget(key, 1);
  if (f->is_str || !isfinite(f->num)) die(2, "plan: %s must be a number", key);
  return f->num;
}

static double jnum_or(const char *key, double fallback) {
  jfield *f = jget(key, 0);
  if (!f) return fallback;
  if (f->is_str || !isfinite(f->num)) die(2, "plan: %s must be a number", key);
  return f->num;
}

/* ------------------------------------------------------------------ MD5, HMAC-MD5 */

static MD5_CTX hmac_inner, hmac_outer, secret_ctx;
static size_t secret_len;

static void crypto_init(void) {
  unsigned char k[64];
  secret_len = strlen(SECRET);
  memset(k, 0, sizeof k);
  memcpy(k, SECRET, secret_len); /* <= 64 octets, used as is (RFC 2104) */
  unsigned char pad[64];
  for (int i = 0; i < 64; i++) pad[i] = k[i] ^ 0x36;
  MD5_Init(&hmac_inner);
  MD5_Update(&hmac_inner, pad, 64);
  for (int i = 0; i < 64; i++) pad[i] = k[i] ^ 0x5c;
  MD5_Init(&hmac_outer);
  MD5_Update(&hmac_outer, pad, 64);
  MD5_Init(&secret_ctx);
  MD5_Update(&secret_ctx, SECRET, secret_len);
}

/* HMAC-MD5 keyed with the shared secret over up to three pieces. */
static void hmac_md5(unsigned char out[16], const void *a, size_t an, const void *b, size_t bn, const void *c, size_t cn) {
  unsigned char inner[16];
  MD5_CTX ctx = hmac_inner;
  MD5_Update(&ctx, a, an);
  if (bn) MD5_Update(&ctx, b, bn);
  if (cn) MD5_Update(&ctx, c, cn);
  MD5_Final(inner, &ctx);
  ctx = hmac_outer;
  MD5_Update(&ctx, inner, 16);
  MD5_Final(out, &ctx);
}

/* ------------------------------------------------------------------ the workload */

static uint32_t prng_state;

/* mulberry32, as prng() in load-generator.ts: the same doubles for the same seed. */
static double prng_next(void) {
  prng_state += 0x6d2b79f5u;
  uint32_t t = prng_state;
  t = (t ^ (t >> 15)) * (t | 1u);
  t ^= t + (t ^ (t >> 7)) * (t | 61u);
  return (double)(t ^ (t >> 14)) / 4294967296.0;
}

typedef struct {
  uint32_t i;
  uint8_t wrong, office;
} auth_case;

/* As randomCase(): an account, then one draw deciding wrong password (2%) or office (30%). */
static auth_case random_case(uint32_t accounts) {
  auth_case c;
  c.i = 1 + (uint32_t)floor(prng_next() * (double)accounts);
  double r = prng_next();
  c.wrong = r < 0.02;
  c.office = r >= 0.02 && r < 0.32;
  return c;
}

static int is_funded(uint32_t i) { return i % 10 != 0; }

/* ------------------------------------------------------------------ state */

enum { K_WARM, K_AUTH, K_PACED, K_ACCT };

typedef struct {
  uint8_t busy;       /* allocated (queued or sent) */
  uint8_t queued;     /* built, waiting for the next flush */
  uint8_t code;       /* request code */
  uint8_t stale;      /* stale_auth holds the authenticator of an earlier request here that timed out */
  uint8_t wrong, office, step;
  uint8_t warm; /* paced: sent in the warm-up, not measured */
  uint8_t auth[16];
  uint8_t stale_auth[16];
  int32_t worker; /* closed loop: the worker waiting on it; -1 paced */
  uint32_t i;     /* account */
  uint32_t session;
  uint16_t len;
  int64_t sent_ns;  /* 0 until sent */
  int64_t sched_ns; /* paced: when it was due */
  uint8_t pkt[REQ_MAX];
} slot_t;

static struct {
  int kind;
  uint16_t auth_port, acct_port;
  uint32_t accounts;
  uint32_t seed;
  char tag[200];
  int concurrency;
  double seconds, rate, warmup;
  uint64_t max;
} plan;

static int fds[SOCKETS];
static slot_t slots[SOCKETS][256];
static uint8_t next_id[SOCKETS];
static int in_use[SOCKETS];
static uint8_t pending[SOCKETS][256]; /* identifiers queued for the next sendmmsg, per socket */
static int npending[SOCKETS];
static int rr; /* round-robin cursor */

static uint64_t sent, answered, timeouts, mismatches, stops_acked, stops_sent, sessions_started, strays, stale_replies;
static uint64_t codes[256], invalid_replies;
static int outstanding;
static dvec latencies, recv_lag, send_late;
static sbuf samples[5];
static int nsamples;
static uint8_t *accepted, *unanswered; /* by account, 1..accounts */
static int64_t t0, deadline;
/* LOADGEN_TRACE=PREFIX: one file per run, PREFIX-<tag>-<kind>, with a line per answered request, "<sent ms after start> <latency ms> <case>",
 * to see when the tail happens and on which path: case w = wrong password, r = other reject (arrears), a = accept, t = accounting. */
static FILE *trace;
static uint32_t warm_cursor, session_seq;
static int active_workers;
/* Paced: set while the sender waits at the outstanding cap; when it last made room; requests it held. */
static int cap_blocked;
static int64_t cap_release_ns;
static uint64_t cap_held;

static uint8_t rnd_pool[4096];
static size_t rnd_left;

static void random16(uint8_t out[16]) {
  if (rnd_left < 16) {
    size_t got = 0;
    while (got < sizeof rnd_pool) {
      ssize_t n = getrandom(rnd_pool + got, sizeof rnd_pool - got, 0);
      if (n < 0) {
        if (errno == EINTR) continue;
        die(1, "getrandom: %s", strerror(errno));
      }
      got += (size_t)n;
    }
    rnd_left = sizeof rnd_pool;
  }
  memcpy(out, rnd_pool + sizeof rnd_pool - rnd_left, 16);
  rnd_left -= 16;
}

static void mismatch(const char *fmt, ...) {
  mismatches++;
  if (nsamples >= 5) return;
  char tmp[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  sputs(&samples[nsamples++], tmp);
}

static int going(int64_t now) {
  uint64_t max = plan.kind == K_WARM ? plan.accounts : plan.max;
  return now < deadline && sent < max;
}

/* ------------------------------------------------------------------ building requests */

static uint8_t *put_attr(uint8_t *p, uint8_t type, const void *value, size_t n) {
  p[0] = type;
  p[1] = (uint8_t)(n + 2);
  memcpy(p + 2, value, n);
  return p + 2 + n;
}

static uint8_t *put_str(uint8_t *p, uint8_t type, const char *s) { return put_attr(p, type, s, strlen(s)); }

static uint8_t *put_int(uint8_t *p, uint8_t type, uint32_t v) {
  uint32_t be = htonl(v);
  return put_attr(p, type, &be, 4);
}

static const uint8_t LOCALHOST[4] = {127, 0, 0, 1};

static void calling_station(char *out, size_t cap, uint32_t i) {
  snprintf(out, cap, "02-00-00-%x-%x-01", (i >> 8) & 0xff, i & 0xff);
}

/* An Access-Request as authenticate() in load-generator.ts builds it, Message-Authenticator first. */
static void build_auth(slot_t *s, uint8_t id) {
  uint8_t *pkt = s->pkt, *p = pkt + 20;
  char text[64];
  pkt[0] = ACCESS_REQUEST;
  pkt[1] = id;
  random16(s->auth);
  memcpy(pkt + 4, s->auth, 16);
  uint8_t *ma = p;
  p[0] = A_MESSAGE_AUTHENTICATOR;
  p[1] = 18;
  memset(p + 2, 0, 16);
  p += 18;
  snprintf(text, sizeof text, "u%u", s->i);
  p = put_str(p, A_USER_NAME, text);
  /* User-Password, RFC 2865 §5.2: padded to 16-octet blocks, each XORed with MD5(secret + previous). */
  const char *pw = s->wrong ? WRONG_PASSWORD : PASSWORD;
  size_t pwlen = strlen(pw), blocks = pwlen ? (pwlen + 15) / 16 : 1;
  uint8_t hidden[128];
  memset(hidden, 0, blocks * 16);
  memcpy(hidden, pw, pwlen);
  const uint8_t *prev = s->auth;
  for (size_t b = 0; b < blocks; b++) {
    uint8_t pad[16];
    MD5_CTX ctx = secret_ctx;
    MD5_Update(&ctx, prev, 16);
    MD5_Final(pad, &ctx);
    for (int k = 0; k < 16; k++) hidden[b * 16 + k] ^= pad[k];
    prev = hidden + b * 16;
  }
  p = put_attr(p, A_USER_PASSWORD, hidden, blocks * 16);
  p = put_attr(p, A_NAS_IP, LOCALHOST, 4);
  snprintf(text, sizeof text, "%s-%u", s->office ? "office" : "dorm", s->i % 48);
  p = put_str(p, A_NAS_PORT_ID, text);
  calling_station(text, sizeof text, s->i);
  p = put_str(p, A_CALLING_STATION, text);
  s->len = (uint16_t)(p - pkt);
  pkt[2] = (uint8_t)(s->len >> 8);
  pkt[3] = (uint8_t)s->len;
  hmac_md5(ma + 2, pkt, s->len, NULL, 0, NULL, 0);
}

/* An Accounting-Request of session() in load-generator.ts: the session's attributes, then the step's. */
static void build_acct(slot_t *s, uint8_t id) {
  uint8_t *pkt = s->pkt, *p = pkt + 20;
  char text[256];
  uint32_t i = s->i;
  pkt[0] = ACCOUNTING_REQUEST;
  pkt[1] = id;
  memset(pkt + 4, 0, 16);
  snprintf(text, sizeof text, "u%u", i);
  p = put_str(p, A_USER_NAME, text);
  snprintf(text, sizeof text, "%s-%u", plan.tag, s->session);
  p = put_str(p, A_ACCT_SESSION_ID, text);
  p = put_attr(p, A_NAS_IP, LOCALHOST, 4);
  snprintf(text, sizeof text, "dorm-%u", i % 48);
  p = put_str(p, A_NAS_PORT_ID, text);
  uint8_t ip[4] = {10, (uint8_t)(i >> 16), (uint8_t)(i >> 8), (uint8_t)i};
  p = put_attr(p, A_FRAMED_IP, ip, 4);
  calling_station(text, sizeof text, i);
  p = put_str(p, A_CALLING_STATION, text);
  if (s->step == 0) {
    p = put_int(p, A_ACCT_STATUS, 1); /* Start */
  } else if (s->step == 1) {
    p = put_int(p, A_ACCT_STATUS, 3); /* Interim-Update */
    p = put_int(p, A_ACCT_SESSION_TIME, 600);
    p = put_int(p, A_ACCT_IN_OCTETS, 123456);
    p = put_int(p, A_ACCT_OUT_OCTETS, 654321);
  } else {
    p = put_int(p, A_ACCT_STATUS, 2); /* Stop */
    p = put_int(p, A_ACCT_SESSION_TIME, 900);
    p = put_int(p, A_ACCT_IN_OCTETS, 223456);
    p = put_int(p, A_ACCT_OUT_OCTETS, 954321);
    p = put_int(p, A_ACCT_TERMINATE, 1); /* User-Request */
  }
  s->len = (uint16_t)(p - pkt);
  pkt[2] = (uint8_t)(s->len >> 8);
  pkt[3] = (uint8_t)s->len;
  /* RFC 2866 §3: MD5(Code + Identifier + Length + 16 zero octets + Attributes + Secret). */
  MD5_CTX ctx;
  MD5_Init(&ctx);
  MD5_Update(&ctx, pkt, s->len);
  MD5_Update(&ctx, SECRET, secret_len);
  MD5_Final(s->auth, &ctx);
  memcpy(pkt + 4, s->auth, 16);
}

/* A free slot on socket `sock` or, when it has none, on the next socket with one; queues it for sending. */
static slot_t *take_slot(int sock, uint8_t *id_out, int *sock_out) {
  for (int k = 0; k < SOCKETS; k++) {
    int s = (sock + k) % SOCKETS;
    if (in_use[s] == 256) continue;
    for (int j = 0; j < 256; j++) {
      uint8_t id = (uint8_t)(next_id[s] + j);
      if (!slots[s][id].busy) {
        next_id[s] = (uint8_t)(id + 1);
        in_use[s]++;
        slot_t *sl = &slots[s][id];
        sl->busy = 1;
        sl->queued = 1;
        sl->sent_ns = 0;
        pending[s][npending[s]++] = id;
        *id_out = id;
        *sock_out = s;
        return sl;
      }
    }
  }
  die(1, "no free RADIUS identifier (cannot happen below %d outstanding)", SOCKETS * 256);
  return NULL;
}

static void issue_auth(int sock, auth_case c, int worker, int64_t sched) {
  uint8_t id;
  int s;
  slot_t *sl = take_slot(sock, &id, &s);
  sl->code = ACCESS_REQUEST;
  sl->i = c.i;
  sl->wrong = c.wrong;
  sl->office = c.office;
  sl->worker = worker;
  sl->sched_ns = sched;
  sl->warm = sched && sched < t0;
  build_auth(sl, id);
  if (!sl->warm) sent++;
  outstanding++;
}

static void issue_acct(int sock, uint32_t i, uint32_t session, uint8_t step, int worker) {
  uint8_t id;
  int s;
  slot_t *sl = take_slot(sock, &id, &s);
  sl->code = ACCOUNTING_REQUEST;
  sl->i = i;
  sl->session = session;
  sl->step = step;
  sl->worker = worker;
  sl->sched_ns = 0;
  sl->warm = 0;
  build_acct(sl, id);
  if (step == 0) sessions_started++;
  if (step == 2) stops_sent++;
  sent++;
  outstanding++;
}

/* Closed loop: what worker `w` does next (the loop body of runPhase's workers). */
static void worker_next(int w, int sock, int64_t now) {
  if (!going(now)) {
    active_workers--;
    return;
  }
  if (plan.kind == K_WARM) {
    if (warm_cursor >= plan.accounts) {
      active_workers--;
      return;
    }
    auth_case c = {++warm_cursor, 0, 0};
    issue_auth(sock, c, w, 0);
  } else if (plan.kind == K_AUTH) {
    issue_auth(sock, random_case(plan.accounts), w, 0);
  } else {
    uint32_t i = 1 + (uint32_t)floor(prng_next() * (double)plan.accounts);
    issue_acct(sock, i, ++session_seq, 0, w);
  }
}

/* ------------------------------------------------------------------ checking replies */

/* The reply's problem against the request in `sl`, or NULL when it verifies (code, length, attributes,
 * Response Authenticator, Message-Authenticator). Sets *reply_message / *session_timeout (first ones). */
static const char *verify(const slot_t *sl, const uint8_t *r, size_t n, const uint8_t **msg, size_t *msg_len,
                          const uint8_t **timeout, size_t *timeout_len) {
  size_t len = ((size_t)r[2] << 8) | r[3];
  uint8_t code = r[0];
  int allowed = sl->code == ACCESS_REQUEST
                    ? (code == ACCESS_ACCEPT || code == ACCESS_REJECT || code == ACCESS_CHALLENGE)
                    : code == ACCOUNTING_RESPONSE;
  if (!allowed) return "unexpected code";
  if (len < 20 || len > n || len > MAX_PACKET) return "bad length";
  uint8_t expected[16];
  MD5_CTX ctx;
  MD5_Init(&ctx);
  MD5_Update(&ctx, r, 4);
  MD5_Update(&ctx, sl->auth, 16);
  MD5_Update(&ctx, r + 20, len - 20);
  MD5_Update(&ctx, SECRET, secret_len);
  MD5_Final(expected, &ctx);
  if (memcmp(expected, r + 4, 16) != 0) return "bad Response Authenticator";
  size_t off = 20, ma = 0;
  *msg = *timeout = NULL;
  *msg_len = *timeout_len = 0;
  while (off < len) {
    if (off + 2 > len) return "truncated attribute header";
    uint8_t type = r[off], alen = r[off + 1];
    if (alen < 2 || off + alen > len) return "bad attribute length";
    if (type == 0) return "attribute type 0";
    if (type == A_MESSAGE_AUTHENTICATOR) {
      if (alen != 18 || ma) return "bad Message-Authenticator";
      ma = off;
    } else if (type == A_REPLY_MESSAGE && !*msg) {
      *msg = r + off + 2;
      *msg_len = alen - 2u;
    } else if (type == A_SESSION_TIMEOUT && !*timeout) {
      *timeout = r + off + 2;
      *timeout_len = alen - 2u;
    }
    off += alen;
  }
  if (ma) {
    /* RFC 3579 §3.2: over the reply with the Request Authenticator in the header (a zeroed field for an
     * Accounting-Response, as FreeRADIUS signs it) and the Message-Authenticator's value zeroed. */
    static const uint8_t zero[16];
    uint8_t head[20], mac[16];
    memcpy(head, r, 4);
    memcpy(head + 4, code == ACCOUNTING_RESPONSE ? zero : sl->auth, 16);
    MD5_CTX c2 = hmac_inner;
    MD5_Update(&c2, head, 20);
    MD5_Update(&c2, r + 20, ma + 2 - 20);
    MD5_Update(&c2, zero, 16);
    MD5_Update(&c2, r + ma + 18, len - ma - 18);
    uint8_t inner[16];
    MD5_Final(inner, &c2);
    c2 = hmac_outer;
    MD5_Update(&c2, inner, 16);
    MD5_Final(mac, &c2);
    if (memcmp(mac, r + ma + 2, 16) != 0) return "bad Message-Authenticator";
  }
  return NULL;
}

/* Whether `r` carries a valid Response Authenticator for the request authenticator `auth`. */
static int answers(const uint8_t auth[16], const uint8_t *r, size_t n) {
  size_t len = ((size_t)r[2] << 8) | r[3];
  if (len < 20 || len > n) return 0;
  uint8_t expected[16];
  MD5_CTX ctx;
  MD5_Init(&ctx);
  MD5_Update(&ctx, r, 4);
  MD5_Update(&ctx, auth, 16);
  MD5_Update(&ctx, r + 20, len - 20);
  MD5_Update(&ctx, SECRET, secret_len);
  MD5_Final(expected, &ctx);
  return memcmp(expected, r + 4, 16) == 0;
}

static const char *case_kind(const slot_t *sl) { return sl->wrong ? "wrong password" : sl->office ? "office" : "dorm"; }
static char trace_kind(const slot_t *sl, uint8_t code) {
  if (sl->code != ACCESS_REQUEST) return 't';
  return sl->wrong ? 'w' : code == ACCESS_REJECT ? 'r' : 'a';
}

/* checkAuthReply() of load-generator.ts; its sample text. */
static void check_auth(const slot_t *sl, uint8_t code, const uint8_t *msg, size_t msg_len, const uint8_t *to, size_t to_len) {
  const char *want = NULL;
  int has_timeout = to != NULL;
  uint32_t timeout = to_len == 4 ? ((uint32_t)to[0] << 24 | (uint32_t)to[1] << 16 | (uint32_t)to[2] << 8 | to[3]) : 0;
  int timeout_ok = to_len == 4 && timeout >= 1 && timeout <= CYCLE_SECONDS;
#define MSG_IS(m) (msg != NULL && msg_len == strlen(m) && memcmp(msg, m, msg_len) == 0)
  if (sl->wrong) {
    if (!(code == ACCESS_REJECT && MSG_IS(WRONG_PASSWORD_MESSAGE))) want = "reject (wrong password)";
  } else if (sl->office) {
    if (!(code == ACCESS_ACCEPT && !has_timeout)) want = "accept without Session-Timeout";
  } else if (is_funded(sl->i)) {
    if (!(code == ACCESS_ACCEPT && timeout_ok)) want = "accept with Session-Timeout";
  } else {
    if (!(code == ACCESS_REJECT && MSG_IS(ARREARS_MESSAGE))) want = "reject (arrears)";
  }
#undef MSG_IS
  if (!want) return;
  char tv[32];
  if (!has_timeout) snprintf(tv, sizeof tv, "-");
  else if (to_len == 4) snprintf(tv, sizeof tv, "%u", timeout);
  else snprintf(tv, sizeof tv, "(%zu octets)", to_len);
  sbuf m = {0};
  if (msg) sjson(&m, (const char *)msg, msg_len);
  else sputs(&m, "undefined");
  mismatch("u%u %s: want %s, got code %u, Session-Timeout %s, Reply-Message %s", sl->i, case_kind(sl), want, code, tv, m.s);
  free(m.s);
}

/* Request (sock, id) is done: `r` is its reply (NULL: lost after 2 s). */
static void complete(int sock, uint8_t id, const uint8_t *r, size_t n, int64_t now) {
  slot_t *sl = &slots[sock][id];
  slot_t done = *sl; /* the slot is reused by what follows */
  sl->busy = 0;
  in_use[sock]--;
  outstanding--;
  if (cap_blocked && outstanding < OUTSTANDING_CAP) {
    cap_blocked = 0;
    cap_release_ns = now;
  }
  if (!r) {
    sl->stale = 1;
    memcpy(sl->stale_auth, done.auth, 16);
  }
  const char *problem = NULL;
  const uint8_t *msg = NULL, *to = NULL;
  size_t msg_len = 0, to_len = 0;
  if (r) {
    if (!done.warm) {
      answered++;
      dpush(&latencies, (double)(now - done.sent_ns) / 1e6);
      if (trace) fprintf(trace, "%.3f %.3f %c\n", (double)(done.sent_ns - t0) / 1e6, (double)(now - done.sent_ns) / 1e6, trace_kind(&done, r[0]));
    }
    problem = verify(&done, r, n, &msg, &msg_len, &to, &to_len);
    if (problem) invalid_replies++;
    else if (!done.warm) codes[r[0]]++;
  } else if (!done.warm) {
    timeouts++;
  }
  if (done.code == ACCESS_REQUEST) {
    int dorm = !done.wrong && !done.office;
    if (r && !problem) {
      check_auth(&done, r[0], msg, msg_len, to, to_len);
      if (dorm && r[0] == ACCESS_ACCEPT) accepted[done.i] = 1;
    } else {
      if (problem) mismatch("u%u %s: reply failed verification (%s)", done.i, case_kind(&done), problem);
      if (dorm && is_funded(done.i)) unanswered[done.i] = 1;
    }
    if (done.worker >= 0) worker_next(done.worker, sock, now);
    return;
  }
  /* Accounting: the session's next step once this one was acknowledged; a new session otherwise. */
  if (problem) mismatch("session %s-%u step %u: reply failed verification (%s)", plan.tag, done.session, done.step, problem);
  if (r && !problem && done.step == 2) stops_acked++;
  if (r && !problem && done.step < 2) {
    if (going(now)) issue_acct(sock, done.i, done.session, (uint8_t)(done.step + 1), done.worker);
    else active_workers--;
    return;
  }
  worker_next(done.worker, sock, now);
}

/* ------------------------------------------------------------------ I/O */

static struct mmsghdr rmsg[BATCH];
static struct iovec riov[BATCH];
static uint8_t rbuf[BATCH][MAX_PACKET];
static char rctl[BATCH][CMSG_SPACE(sizeof(struct timespec))];

static void receive(int sock) {
  for (;;) {
    for (int k = 0; k < BATCH; k++) {
      riov[k].iov_base = rbuf[k];
      riov[k].iov_len = MAX_PACKET;
      memset(&rmsg[k].msg_hdr, 0, sizeof rmsg[k].msg_hdr);
      rmsg[k].msg_hdr.msg_iov = &riov[k];
      rmsg[k].msg_hdr.msg_iovlen = 1;
      rmsg[k].msg_hdr.msg_control = rctl[k];
      rmsg[k].msg_hdr.msg_controllen = sizeof rctl[k];
    }
    int got = recvmmsg(fds[sock], rmsg, BATCH, MSG_DONTWAIT, NULL);
    if (got < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR || errno == ECONNREFUSED) return;
      die(1, "recvmmsg: %s", strerror(errno));
    }
    int64_t now = mono_ns(), real = real_ns();
    for (int k = 0; k < got; k++) {
      size_t n = rmsg[k].msg_len;
      const uint8_t *r = rbuf[k];
      for (struct cmsghdr *c = CMSG_FIRSTHDR(&rmsg[k].msg_hdr); c; c = CMSG_NXTHDR(&rmsg[k].msg_hdr, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS) {
          struct timespec ts;
          memcpy(&ts, CMSG_DATA(c), sizeof ts);
          int64_t lag = real - ((int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec);
          dpush(&recv_lag, (double)(lag > 0 ? lag : 0) / 1e6);
        }
      }
      if (n < 20) {
        strays++; /* as the Node client: not a RADIUS packet */
        continue;
      }
      slot_t *sl = &slots[sock][r[1]];
      if (!sl->busy || sl->queued) {
        strays++; /* a late reply to a request that timed out, its slot free */
        continue;
      }
      if (sl->stale && !answers(sl->auth, r, n) && answers(sl->stale_auth, r, n)) {
        stale_replies++; /* a late reply to an earlier request with this identifier that timed out */
        continue;
      }
      complete(sock, r[1], r, n, now);
    }
    if (got < BATCH) return;
  }
}

static struct mmsghdr smsg[256];
static struct iovec siov[256];

/* Sends what is queued on every socket, one sendmmsg per socket, and stamps the send time. */
static void flush(void) {
  for (int s = 0; s < SOCKETS; s++) {
    int n = npending[s];
    if (!n) continue;
    int64_t now = mono_ns();
    for (int k = 0; k < n; k++) {
      slot_t *sl = &slots[s][pending[s][k]];
      siov[k].iov_base = sl->pkt;
      siov[k].iov_len = sl->len;
      memset(&smsg[k].msg_hdr, 0, sizeof smsg[k].msg_hdr);
      smsg[k].msg_hdr.msg_iov = &siov[k];
      smsg[k].msg_hdr.msg_iovlen = 1;
    }
    int done = 0;
    while (done < n) {
      int m = sendmmsg(fds[s], smsg + done, (unsigned)(n - done), MSG_DONTWAIT);
      if (m < 0) {
        if (errno == EINTR || errno == ECONNREFUSED) continue; /* a pending ICMP error: the datagram was not sent */
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS) break; /* retry on the next turn */
        die(1, "sendmmsg: %s", strerror(errno));
      }
      done += m;
    }
    for (int k = 0; k < done; k++) {
      slot_t *sl = &slots[s][pending[s][k]];
      sl->queued = 0;
      sl->sent_ns = now;
      if (sl->sched_ns && !sl->warm) dpush(&send_late, (double)(now - sl->sched_ns) / 1e6);
    }
    memmove(pending[s], pending[s] + done, (size_t)(n - done));
    npending[s] = n - done;
  }
}

static void expire(int64_t now) {
  for (int s = 0; s < SOCKETS; s++) {
    if (!in_use[s]) continue;
    for (int id = 0; id < 256; id++) {
      slot_t *sl = &slots[s][id];
      if (sl->busy && !sl->queued && now - sl->sent_ns >= TIMEOUT_NS) complete(s, (uint8_t)id, NULL, 0, now);
    }
  }
}

static void open_sockets(uint16_t port) {
  struct sockaddr_in local = {.sin_family = AF_INET, .sin_port = 0};
  struct sockaddr_in server = {.sin_family = AF_INET, .sin_port = htons(port)};
  inet_pton(AF_INET, "127.0.0.1", &local.sin_addr);
  server.sin_addr = local.sin_addr;
  for (int s = 0; s < SOCKETS; s++) {
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) die(1, "socket: %s", strerror(errno));
    int size = 4 << 20, one = 1;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size); /* as the Node client's 4 MiB */
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
    if (setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof one) < 0) die(1, "SO_TIMESTAMPNS: %s", strerror(errno));
    if (bind(fd, (struct sockaddr *)&local, sizeof local) < 0) die(1, "bind: %s", strerror(errno));
    /* Connected: replies from anywhere but the server's address and port are not delivered. */
    if (connect(fd, (struct sockaddr *)&server, sizeof server) < 0) die(1, "connect: %s", strerror(errno));
    fds[s] = fd;
    uint8_t r[16];
    random16(r);
    next_id[s] = r[0]; /* as the Node client, identifiers start at a random point */
  }
}

/* ------------------------------------------------------------------ main */

static void watchdog(int sig) {
  (void)sig;
  static const char m[] = "load generator: watchdog fired, giving up\n";
  if (write(2, m, sizeof m - 1) < 0) { /* nothing more to do */ }
  _exit(3);
}

static double cpu_seconds(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
         (double)ru.ru_stime.tv_usec / 1e6;
}

static void print_cases(int argc, char **argv) {
  long n = 0;
  double seed = 0, accounts = 0;
  for (int k = 1; k + 1 < argc; k += 2) {
    if (!strcmp(argv[k], "--cases")) n = atol(argv[k + 1]);
    else if (!strcmp(argv[k], "--seed")) seed = atof(argv[k + 1]);
    else if (!strcmp(argv[k], "--accounts")) accounts = atof(argv[k + 1]);
  }
  if (n <= 0 || accounts < 1) die(2, "usage: loadgen --cases N --seed S --accounts A");
  prng_state = (uint32_t)(int64_t)seed;
  for (long k = 0; k < n; k++) {
    auth_case c = random_case((uint32_t)accounts);
    printf("%u %d %d\n", c.i, c.wrong, c.office);
  }
}

int main(int argc, char **argv) {
  const char *plan_json = NULL;
  if (argc >= 2 && !strcmp(argv[1], "--cases")) {
    print_cases(argc, argv);
    return 0;
  }
  for (int k = 1; k + 1 < argc; k++)
    if (!strcmp(argv[k], "--plan")) plan_json = argv[k + 1];
  if (!plan_json) {
    fputs("usage: loadgen --plan '<json Plan>'   (see bench/load-generator.ts)\n", stderr);
    return 2;
  }
  jp = plan_json;
  jvalue("");
  jfield *host = jget("host", 1);
  if (!host->is_str || strcmp(host->str, "127.0.0.1") != 0) {
    fputs("the load generator only talks to 127.0.0.1\n", stderr);
    return 2;
  }
  jfield *kind = jget("phase.kind", 1), *tag = jget("sessionTag", 1);
  if (!kind->is_str || !tag->is_str) die(2, "plan: phase.kind and sessionTag must be strings");
  if (!strcmp(kind->str, "warm")) plan.kind = K_WARM;
  else if (!strcmp(kind->str, "auth")) plan.kind = K_AUTH;
  else if (!strcmp(kind->str, "paced")) plan.kind = K_PACED;
  else if (!strcmp(kind->str, "acct")) plan.kind = K_ACCT;
  else die(2, "plan: unknown phase kind %s", kind->str);
  if (strlen(tag->str) > 180) die(2, "plan: sessionTag too long");
  snprintf(plan.tag, sizeof plan.tag, "%s", tag->str);
  double auth_port = jnum("authPort"), acct_port = jnum("acctPort"), accounts = jnum("accounts"), seed = jnum("seed");
  if (auth_port < 1 || auth_port > 65535 || acct_port < 1 || acct_port > 65535) die(2, "plan: bad port");
  if (accounts < 1 || accounts > 16777215) die(2, "plan: accounts must be 1..16777215");
  plan.auth_port = (uint16_t)auth_port;
  plan.acct_port = (uint16_t)acct_port;
  plan.accounts = (uint32_t)accounts;
  plan.seed = (uint32_t)(int64_t)seed; /* `seed >>> 0` */
  plan.seconds = jnum("phase.seconds");
  if (!(plan.seconds > 0)) die(2, "plan: phase.seconds must be positive");
  if (plan.kind == K_PACED) {
    plan.rate = jnum("phase.rate");
    if (!(plan.rate > 0)) die(2, "plan: phase.rate must be positive");
    plan.warmup = jnum_or("phase.warmup", 0);
    if (!(plan.warmup >= 0)) die(2, "plan: phase.warmup must be >= 0");
  } else {
    double c = jnum("phase.concurrency");
    if (c < 1 || c > OUTSTANDING_CAP) die(2, "plan: phase.concurrency must be 1..%d", OUTSTANDING_CAP);
    plan.concurrency = (int)c;
  }
  plan.max = plan.kind == K_WARM ? plan.accounts : (uint64_t)jnum_or("phase.max", 1e15);

  /* The watchdog, as the Node one: phaseBoundSeconds() = phase.seconds + 30. */
  signal(SIGALRM, watchdog);
  signal(SIGPIPE, SIG_IGN);
  alarm((unsigned)ceil(plan.seconds + plan.warmup + 30));

  crypto_init();
  prng_state = plan.seed;
  accepted = calloc(plan.accounts + 1, 1);
  unanswered = calloc(plan.accounts + 1, 1);
  if (!accepted || !unanswered) die(1, "out of memory");
  open_sockets(plan.kind == K_ACCT ? plan.acct_port : plan.auth_port);
  int ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) die(1, "epoll_create1: %s", strerror(errno));
  for (int s = 0; s < SOCKETS; s++) {
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)s};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, fds[s], &ev) < 0) die(1, "epoll_ctl: %s", strerror(errno));
  }

  if (getenv("LOADGEN_TRACE")) {
    char name[4096];
    snprintf(name, sizeof name, "%s-%s-%s", getenv("LOADGEN_TRACE"), plan.tag, kind->str);
    trace = fopen(name, "w");
  }
  /* Paced: the schedule starts `warmup` seconds before the measured part, at the same rate; what was due
     before t0 is sent, answered and checked, but not measured. */
  int64_t tw = mono_ns();
  t0 = tw + (int64_t)(plan.warmup * 1e9);
  int started = 0;
  double cpu0 = 0;
  deadline = t0 + (int64_t)(plan.seconds * 1e9);
  if (trace) {
    /* The trace's clock: t0 on CLOCK_MONOTONIC, to line the trace up with e.g. `perf record -k CLOCK_MONOTONIC`. */
    char name[4096];
    snprintf(name, sizeof name, "%s-%s-%s.t0", getenv("LOADGEN_TRACE"), plan.tag, kind->str);
    FILE *f = fopen(name, "w");
    if (f) {
      fprintf(f, "%lld\n", (long long)t0);
      fclose(f);
    }
  }
  uint64_t total = 0, issued = 0;
  if (plan.kind == K_PACED) {
    double t = floor(plan.rate * (plan.warmup + plan.seconds));
    total = (uint64_t)(t < (double)plan.max ? t : (double)plan.max);
  } else {
    active_workers = plan.concurrency;
    for (int w = 0; w < plan.concurrency; w++) worker_next(w, rr++ % SOCKETS, t0);
  }
  int64_t next_scan = tw + SCAN_NS;
  struct epoll_event events[SOCKETS];
  for (;;) {
    int64_t now = mono_ns();
    if (!started && now >= t0) {
      /* The measured part starts now. */
      started = 1;
      fputs("{\"started\":true}\n", stdout);
      fflush(stdout);
      cpu0 = cpu_seconds();
    }
    if (plan.kind == K_PACED) {
      /* Request k (1-based) is due at tw + k / rate; late ones leave at once, in a burst. */
      double elapsed = (double)(now - tw) / 1e9;
      uint64_t due = (uint64_t)floor(elapsed * plan.rate);
      if (due > total) due = total;
      while (issued < due && outstanding < OUTSTANDING_CAP) {
        issued++;
        int64_t sched = tw + (int64_t)ceil((double)issued / plan.rate * 1e9);
        /* Held at the cap (the server's doing, not ours): lateness counts from when room was made. */
        if (cap_release_ns > sched) {
          sched = cap_release_ns;
          cap_held++;
        }
        issue_auth(rr++ % SOCKETS, random_case(plan.accounts), -1, sched);
      }
      if (issued < due) cap_blocked = 1;
      if (issued >= total && outstanding == 0) break;
    } else if (active_workers == 0 && outstanding == 0) {
      break;
    }
    flush();
    if (now >= next_scan) {
      expire(now);
      next_scan = now + SCAN_NS;
      continue; /* expiring may have issued requests */
    }
    int64_t wake = next_scan;
    if (plan.kind == K_PACED && issued < total && outstanding < OUTSTANDING_CAP) {
      int64_t next_due = tw + (int64_t)ceil((double)(issued + 1) / plan.rate * 1e9);
      if (!started && t0 < next_due) next_due = t0;
      if (next_due < now + PACE_QUANTUM_NS) next_due = now + PACE_QUANTUM_NS;
      if (next_due < wake) wake = next_due;
    }
    int pending_sends = 0;
    for (int s = 0; s < SOCKETS; s++) pending_sends += npending[s];
    int64_t wait = pending_sends ? 1000000 : wake - mono_ns(); /* a full send buffer: try again in 1 ms */
    if (wait < 0) wait = 0;
    struct timespec ts = {.tv_sec = wait / 1000000000LL, .tv_nsec = wait % 1000000000LL};
    int n = epoll_pwait2(ep, events, SOCKETS, &ts, NULL);
    if (n < 0) {
      if (errno == EINTR) continue;
      die(1, "epoll_pwait2: %s", strerror(errno));
    }
    for (int k = 0; k < n; k++) receive((int)events[k].data.u32);
  }
  int64_t t1 = mono_ns();
  double seconds = (double)(t1 - t0) / 1e9;
  double cpu = cpu_seconds() - cpu0;

  qsort(latencies.v, latencies.n, sizeof(double), cmp_double);
  qsort(recv_lag.v, recv_lag.n, sizeof(double), cmp_double);
  qsort(send_late.v, send_late.n, sizeof(double), cmp_double);
  double lag = recv_lag.n ? percentile(&recv_lag, 99) : 0;
  if (send_late.n && percentile(&send_late, 99) > lag) lag = percentile(&send_late, 99);

  sbuf o = {0};
  sprintf_(&o, "{\"sent\":%llu,\"answered\":%llu,\"timeouts\":%llu,\"seconds\":", (unsigned long long)sent,
           (unsigned long long)answered, (unsigned long long)timeouts);
  snum(&o, seconds);
  sputs(&o, ",\"rps\":");
  snum(&o, (double)answered / seconds);
  const char *names[] = {"p50", "p95", "p99"};
  const double ps[] = {50, 95, 99};
  for (int k = 0; k < 3; k++) {
    sprintf_(&o, ",\"%s\":", names[k]);
    snum(&o, percentile(&latencies, ps[k]));
  }
  sputs(&o, ",\"max\":");
  snum(&o, latencies.n ? latencies.v[latencies.n - 1] : NAN);
  sputs(&o, ",\"codes\":{");
  int first = 1;
  for (int c = 0; c < 256; c++) {
    if (!codes[c]) continue;
    sprintf_(&o, "%s\"%d\":%llu", first ? "" : ",", c, (unsigned long long)codes[c]);
    first = 0;
  }
  if (timeouts) {
    sprintf_(&o, "%s\"timeout\":%llu", first ? "" : ",", (unsigned long long)timeouts);
    first = 0;
  }
  if (invalid_replies) sprintf_(&o, "%s\"invalid\":%llu", first ? "" : ",", (unsigned long long)invalid_replies);
  sprintf_(&o, "},\"mismatches\":%llu,\"samples\":[", (unsigned long long)mismatches);
  for (int k = 0; k < nsamples; k++) {
    if (k) sputs(&o, ",");
    sjson(&o, samples[k].s, samples[k].n);
  }
  sputs(&o, "],\"dormAccepted\":[");
  first = 1;
  for (uint32_t i = 1; i <= plan.accounts; i++) {
    if (!accepted[i]) continue;
    sprintf_(&o, first ? "%u" : ",%u", i);
    first = 0;
  }
  sputs(&o, "],\"dormUnanswered\":[");
  first = 1;
  for (uint32_t i = 1; i <= plan.accounts; i++) {
    if (!unanswered[i] || accepted[i]) continue;
    sprintf_(&o, first ? "%u" : ",%u", i);
    first = 0;
  }
  sprintf_(&o, "],\"stopsAcked\":%llu,\"stopsSent\":%llu,\"sessionsStarted\":%llu,\"generatorCpuSeconds\":",
           (unsigned long long)stops_acked, (unsigned long long)stops_sent, (unsigned long long)sessions_started);
  snum(&o, cpu);
  sputs(&o, ",\"generatorLoopDelayP99Ms\":");
  snum(&o, lag);
  sputs(&o, "}\n");
  fwrite(o.s, 1, o.n, stdout);
  fflush(stdout);
  if (trace) fclose(trace);
  if (cap_held)
    fprintf(stderr, "loadgen: paced: %llu of %llu requests waited for the %d-outstanding cap (the offered rate was not held)\n",
            (unsigned long long)cap_held, (unsigned long long)issued, OUTSTANDING_CAP);
  if (strays || stale_replies)
    fprintf(stderr, "loadgen: %llu stray and %llu late replies ignored\n", (unsigned long long)strays,
            (unsigned long long)stale_replies);
  return 0;
}

/*
 * The ring engine's capture thread: a native thread (pthread) that waits on the TPACKET_V3 ring,
 * walks ready blocks with probe_ring_walk (ring-walk.c) straight into the BatchChannel's shared
 * slots, publishes each batch by size or once its first packet has waited the flush interval,
 * and wakes the JavaScript main thread through a thread-safe bun:ffi JSCallback. It replaces the
 * capture Worker, a second JavaScript runtime that only polled and called the walker (+7 MiB of
 * memory, ~30 us of CPU per wake-up: docs/capture-history.md, "Memory: where it goes").
 *
 * Compiled appended to ring-walk.c, by cc -O2 with the program or by Bun's TinyCC at run time
 * (ring-natives.ts; one translation unit: the types,
 * memcpy, probe_ring_walk and its STATE_ and WALK_ names come from there; see ring-natives.ts). No #include, as there.
 *
 * Shared state (ring-thread.ts names the same indexes):
 *   control: Int32 cells in a SharedArrayBuffer, the thread's parameters and its two-way flags;
 *     the 64-bit cells (addresses, the thread id) sit at 8-byte-aligned byte offsets.
 *   channel: the BatchChannel's control (batch-channel.ts): [0] published, written here;
 *     [1] consumed, written by the main thread; [2 + 3*e], [3 + 3*e], [4 + 3*e] entry e's byte
 *     length, record count and slot. Batch n is entry n % slots; it goes into the lowest slot
 *     no published, unconsumed batch holds (claim_slot), as BatchChannelWriter does.
 * Ordering: x86-64 keeps stores in order and loads in order, so a slot's bytes and lengths are
 * visible before the `published` store that follows them; the two places where this thread
 * stores a flag and then loads the main thread's (wake-up and waiting for space, a Dekker
 * pattern against the main thread's sequentially consistent Atomics) need a full fence: mfence.
 * Other architectures get the capture Worker instead (probe_ring_thread_supported() == 0).
 */

/* control[] Int32 cells. */
#define CONTROL_STOP 0            /* main -> thread: STOP_* (then the wake eventfd is written) */
#define CONTROL_STATE 1           /* thread -> main: STATE_* */
#define CONTROL_FAILURE 2         /* thread -> main: FAILURE_* or a positive errno of the socket */
#define CONTROL_WAKE_PENDING 3    /* thread sets 1 and calls the callback; main clears before draining */
#define CONTROL_WAITING_SPACE 4   /* thread sets 1 while every slot is full; main then writes the eventfd */
#define CONTROL_WALK_FLAGS 5
#define CONTROL_SNAPLEN 6
#define CONTROL_FLUSH_BYTES 7
#define CONTROL_BLOCK_BYTES 8
#define CONTROL_BLOCK_COUNT 9
#define CONTROL_SLOTS 10
#define CONTROL_SLOT_BYTES 11
#define CONTROL_FLUSH_INTERVAL_MS 12
#define CONTROL_RING_FD 13
#define CONTROL_WAKE_FD 14
#define CONTROL_STOP_FLUSH_MS 15
/* 64-bit cells, as indexes of Int32 cells (byte offset = 4 * index, a multiple of 8). */
#define CONTROL_RING_ADDRESS 16
#define CONTROL_SLOTS_ADDRESS 18
#define CONTROL_CHANNEL_ADDRESS 20
#define CONTROL_CALLBACK_ADDRESS 22
#define CONTROL_THREAD_ID 24
#define CONTROL_CELLS 26

/* Stop: hand over what the ring holds, then make the last call. Abandon: the process is exiting;
 * end at once, no more calls (the main thread joins right after, inside its exit handler). */
#define STOP_DRAIN 1
#define STOP_ABANDON 2

#define STATE_RUNNING 0
#define STATE_STOPPED 1
#define STATE_FAILED 2

#define FAILURE_NONE 0
#define FAILURE_OVERRUN -1
#define FAILURE_NO_ROOM -2
#define FAILURE_HANGUP -3
#define FAILURE_POLL -4

#define CHANNEL_PUBLISHED 0
#define CHANNEL_CONSUMED 1
#define CHANNEL_ENTRY_META 2
#define CHANNEL_ENTRY_CELLS 3
#define ENTRY_BYTE_LENGTH 0
#define ENTRY_COUNT 1
#define ENTRY_SLOT 2

#define TP_STATUS_KERNEL 0
#define TP_STATUS_USER 1
#define TP_STATUS_BLK_TMO 32
#define BLOCK_STATUS 8
#define BLOCK_NUM_PKTS 12

#define POLLIN 1
#define POLLERR 8
#define POLLHUP 16
#define POLLNVAL 32
#define SOL_SOCKET 1
#define SO_ERROR 4
#define CLOCK_MONOTONIC 1
#define EINTR 4

/*
 * How long one wait may last with nothing pending. The main thread writes the wake eventfd on
 * stop and when it frees a slot the thread waits for, so this is only a safety net against a
 * lost wake-up, not a latency bound.
 */
#define IDLE_WAIT_MS 1000
/* While every slot is full: how long one wait for the main thread to free one may last. */
#define SPACE_WAIT_MS 50

struct probe_pollfd { int fd; short events; short revents; };
struct probe_timespec { long tv_sec; long tv_nsec; };
typedef unsigned long probe_thread_t;
/* The main thread's JSCallback: last is 1 on the thread's final call. */
typedef void (*probe_wake_callback)(int last);

int poll(struct probe_pollfd *fds, unsigned long count, int timeoutMs);
int clock_gettime(int clock, struct probe_timespec *now);
long read(int fd, void *buffer, usize bytes);
int getsockopt(int fd, int level, int name, void *value, u32 *length);
int *__errno_location(void);
int pthread_create(probe_thread_t *thread, const void *attributes, void *(*run)(void *), void *argument);
int pthread_join(probe_thread_t thread, void **result);
void *memset(void *destination, int value, usize bytes);

#define ENOSYS 38

#if defined(__x86_64__)

#define LOAD(cell) (*(volatile int *)&(cell))
#define STORE(cell, value) (*(volatile int *)&(cell) = (value))
#define COMPILER_BARRIER() __asm__ __volatile__("" ::: "memory")
#define FULL_FENCE() __asm__ __volatile__("mfence" ::: "memory")

static long long monotonic_ms(void) {
  struct probe_timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

static void *address_cell(int *control, int index) {
  return *(void **)(control + index);
}

/* The capture's state on the thread's stack: where it is in the ring and in the current batch. */
struct ring_thread {
  int *control;
  int *channel;
  u8 *ring;
  u8 *slots;
  probe_wake_callback wake;
  u32 walk[STATE_CELLS];     /* probe_ring_walk's state[] */
  int slot;                  /* the claimed slot, or -1 */
  long long first_pending_ms; /* when the current batch got its first record; 0 when empty */
  u32 block_index;
};

/* Wakes the main thread unless a wake-up is already on its way. */
static void wake_main(struct ring_thread *t) {
  if (LOAD(t->control[CONTROL_STOP]) == STOP_ABANDON) return; /* the process is exiting */
  /* The published store (or the state store) must be visible before the flag is read: if the
   * main thread cleared it after an earlier wake-up it will then see this batch too. */
  FULL_FENCE();
  if (LOAD(t->control[CONTROL_WAKE_PENDING]) != 0) return;
  STORE(t->control[CONTROL_WAKE_PENDING], 1);
  t->wake(0);
}

static int full_slots(struct ring_thread *t) {
  return (int)((u32)LOAD(t->channel[CHANNEL_PUBLISHED]) - (u32)LOAD(t->channel[CHANNEL_CONSUMED]));
}

/* The first channel cell of batch n's entry. */
static int entry_cell(struct ring_thread *t, u32 n) {
  return CHANNEL_ENTRY_META + CHANNEL_ENTRY_CELLS * (int)(n % (u32)t->control[CONTROL_SLOTS]);
}

/*
 * Claims the lowest slot no published, unconsumed batch holds; 0 when every slot is full. A
 * stale `consumed` only makes more slots look held. Slots: at most 32 (batch-channel.ts).
 */
static int claim_slot(struct ring_thread *t) {
  u32 slots = (u32)t->control[CONTROL_SLOTS];
  u32 published = (u32)LOAD(t->channel[CHANNEL_PUBLISHED]);
  u32 consumed = (u32)LOAD(t->channel[CHANNEL_CONSUMED]);
  u32 full = published - consumed;
  u32 held = 0;
  u32 k;
  int slot = -1;
  if (full >= slots) return 0;
  for (k = 0; k < full; k++) held |= 1u << (u32)t->channel[entry_cell(t, consumed + k) + ENTRY_SLOT];
  for (k = 0; k < slots; k++) {
    if ((held & (1u << k)) == 0) {
      slot = (int)k;
      break;
    }
  }
  if (slot < 0) return 0;
  t->slot = slot;
  t->walk[STATE_USED] = 0;
  t->walk[STATE_COUNT] = 0;
  t->first_pending_ms = 0;
  return 1;
}

/* Publishes the claimed slot (with its records) and wakes the main thread. */
static void publish_slot(struct ring_thread *t) {
  u32 published = (u32)LOAD(t->channel[CHANNEL_PUBLISHED]);
  int entry = entry_cell(t, published);
  t->channel[entry + ENTRY_BYTE_LENGTH] = (int)t->walk[STATE_USED];
  t->channel[entry + ENTRY_COUNT] = (int)t->walk[STATE_COUNT];
  t->channel[entry + ENTRY_SLOT] = t->slot;
  COMPILER_BARRIER();
  STORE(t->channel[CHANNEL_PUBLISHED], (int)(published + 1)); /* wraps at 2^32 on purpose */
  t->slot = -1;
  t->first_pending_ms = 0;
  wake_main(t);
}

static void drain_wake_fd(struct ring_thread *t) {
  unsigned long long counter;
  read(t->control[CONTROL_WAKE_FD], &counter, sizeof counter);
}

/*
 * Waits (up to timeout_ms) until the main thread frees a slot or asks to stop. The flag tells
 * the main thread to write the eventfd after its next drain; the fence orders the flag's store
 * before the re-check of the counters (the main thread stores `consumed`, then loads the flag).
 */
static void wait_for_space(struct ring_thread *t, int timeout_ms) {
  struct probe_pollfd wake;
  STORE(t->control[CONTROL_WAITING_SPACE], 1);
  FULL_FENCE();
  if (full_slots(t) >= t->control[CONTROL_SLOTS] && !LOAD(t->control[CONTROL_STOP])) {
    wake.fd = t->control[CONTROL_WAKE_FD];
    wake.events = POLLIN;
    wake.revents = 0;
    if (poll(&wake, 1, timeout_ms) > 0) drain_wake_fd(t);
  }
  STORE(t->control[CONTROL_WAITING_SPACE], 0);
}

static void fail(struct ring_thread *t, int failure) {
  t->control[CONTROL_FAILURE] = failure;
}

/*
 * Walks ready blocks into slots until none is ready, the slots are full or the stop flag is
 * set (unless draining). Returns 1 when it walked something, 0 when the next block is not
 * ready, -1 when every slot is full, -2 on a failure (recorded).
 */
static int walk_ready_blocks(struct ring_thread *t, u32 max_blocks) {
  u32 block_bytes = (u32)t->control[CONTROL_BLOCK_BYTES];
  u32 block_count = (u32)t->control[CONTROL_BLOCK_COUNT];
  u32 flush_bytes = (u32)t->control[CONTROL_FLUSH_BYTES];
  u32 walked = 0;
  while (walked < max_blocks) {
    u8 *block = t->ring + (usize)t->block_index * block_bytes;
    u32 status = (u32)LOAD(*(int *)(block + BLOCK_STATUS));
    if ((status & TP_STATUS_USER) == 0) return walked > 0;
    COMPILER_BARRIER(); /* read the block only after its status said it is ours */
    if (t->slot < 0 && !claim_slot(t)) return -1;
    t->walk[STATE_FLUSH_BYTES] = flush_bytes;
    t->walk[STATE_CAPACITY] = (u32)t->control[CONTROL_SLOT_BYTES];
    u32 count_before = t->walk[STATE_COUNT];
    int result = probe_ring_walk(block, t->slots + (usize)t->slot * (u32)t->control[CONTROL_SLOT_BYTES], t->walk);
    if (t->walk[STATE_COUNT] > count_before && t->first_pending_ms == 0) t->first_pending_ms = monotonic_ms();
    if (result == WALK_FULL) { /* the slot is full before a frame; resume in this block */
      publish_slot(t);
      continue;
    }
    if (result < 0) {
      fail(t, result == WALK_OVERRUN ? FAILURE_OVERRUN : FAILURE_NO_ROOM);
      return -2;
    }
    /* The block is done: give it back to the kernel once every read of it is over. */
    COMPILER_BARRIER();
    STORE(*(int *)(block + BLOCK_STATUS), TP_STATUS_KERNEL);
    t->block_index = (t->block_index + 1) % block_count;
    walked++;
    /* A block the kernel retired on its timer: traffic is light, hand the batch over now. */
    if (t->walk[STATE_COUNT] > 0 && ((status & TP_STATUS_BLK_TMO) != 0 || t->walk[STATE_USED] >= flush_bytes)) publish_slot(t);
  }
  return 1;
}

/* Publishes the pending batch once its first record has waited the flush interval; returns ms left. */
static int flush_if_due(struct ring_thread *t) {
  if (t->slot < 0 || t->walk[STATE_COUNT] == 0) return IDLE_WAIT_MS;
  long long waited = monotonic_ms() - t->first_pending_ms;
  long long left = (long long)t->control[CONTROL_FLUSH_INTERVAL_MS] - waited;
  if (left > 0) return (int)left;
  publish_slot(t);
  return IDLE_WAIT_MS;
}

/* Waits for the ring or the wake eventfd. Returns 0, or -2 when the socket failed (recorded). */
static int wait_for_ring(struct ring_thread *t, int timeout_ms) {
  struct probe_pollfd fds[2];
  fds[0].fd = t->control[CONTROL_RING_FD];
  fds[0].events = POLLIN | POLLERR;
  fds[0].revents = 0;
  fds[1].fd = t->control[CONTROL_WAKE_FD];
  fds[1].events = POLLIN;
  fds[1].revents = 0;
  int ready = poll(fds, 2, timeout_ms);
  if (ready < 0) {
    int error = *__errno_location();
    if (error == EINTR) return 0;
    fail(t, FAILURE_POLL);
    return -2;
  }
  if (fds[1].revents & POLLIN) drain_wake_fd(t);
  if (fds[0].revents & POLLERR) {
    int error = 0;
    u32 length = sizeof error;
    getsockopt(fds[0].fd, SOL_SOCKET, SO_ERROR, &error, &length);
    if (error != 0) {
      fail(t, error);
      return -2;
    }
  }
  if (fds[0].revents & (POLLHUP | POLLNVAL)) {
    fail(t, FAILURE_HANGUP);
    return -2;
  }
  return 0;
}

/* At stop: what is already in the ring (at most one pass over it) goes out, the last batch too. */
static void drain_at_stop(struct ring_thread *t) {
  long long deadline = monotonic_ms() + t->control[CONTROL_STOP_FLUSH_MS];
  u32 blocks_left = (u32)t->control[CONTROL_BLOCK_COUNT];
  while (monotonic_ms() < deadline && LOAD(t->control[CONTROL_STOP]) != STOP_ABANDON) {
    int walked = blocks_left > 0 ? walk_ready_blocks(t, 1) : 0;
    if (walked == -2) return;
    if (walked == -1) {
      wait_for_space(t, SPACE_WAIT_MS);
      continue;
    }
    if (walked == 1) {
      blocks_left--;
      continue;
    }
    /* The next block is still the kernel's. Frames already in it were captured before the stop:
     * the kernel retires it within its retire timeout, so wait for that rather than lose them.
     * num_pkts is only a hint here (the kernel counts a frame before copying it); the block is
     * read only once its status says it is ours. */
    if (blocks_left > 0 && LOAD(*(int *)(t->ring + (usize)t->block_index * (u32)t->control[CONTROL_BLOCK_BYTES] + BLOCK_NUM_PKTS)) != 0) {
      long long left = deadline - monotonic_ms();
      if (left > 0 && wait_for_ring(t, (int)left) == 0) continue;
    }
    break;
  }
  if (t->slot >= 0 && t->walk[STATE_COUNT] > 0) publish_slot(t);
}

static void *ring_thread_main(void *argument) {
  int *control = (int *)argument;
  struct ring_thread t;
  int failed = 0;
  t.control = control;
  t.channel = (int *)address_cell(control, CONTROL_CHANNEL_ADDRESS);
  t.ring = (u8 *)address_cell(control, CONTROL_RING_ADDRESS);
  t.slots = (u8 *)address_cell(control, CONTROL_SLOTS_ADDRESS);
  t.wake = (probe_wake_callback)address_cell(control, CONTROL_CALLBACK_ADDRESS);
  t.slot = -1;
  t.first_pending_ms = 0;
  t.block_index = 0;
  memset(t.walk, 0, sizeof t.walk);
  t.walk[STATE_FLAGS] = (u32)control[CONTROL_WALK_FLAGS];
  t.walk[STATE_SNAPLEN] = (u32)control[CONTROL_SNAPLEN];
  t.walk[STATE_BLOCK_BYTES] = (u32)control[CONTROL_BLOCK_BYTES];
  while (!LOAD(control[CONTROL_STOP])) {
    int walked = walk_ready_blocks(&t, (u32)control[CONTROL_BLOCK_COUNT]);
    if (walked == -2) {
      failed = 1;
      break;
    }
    if (walked == -1) {
      wait_for_space(&t, SPACE_WAIT_MS);
      continue;
    }
    int timeout_ms = flush_if_due(&t);
    if (walked == 1) continue;
    if (wait_for_ring(&t, timeout_ms) != 0) {
      failed = 1;
      break;
    }
  }
  if (LOAD(control[CONTROL_STOP]) == STOP_ABANDON) return 0;
  if (!failed) drain_at_stop(&t);
  else if (t.slot >= 0 && t.walk[STATE_COUNT] > 0) publish_slot(&t); /* what was read before the failure */
  if (LOAD(control[CONTROL_STOP]) == STOP_ABANDON) return 0;
  STORE(control[CONTROL_STATE], failed ? STATE_FAILED : STATE_STOPPED);
  FULL_FENCE();
  STORE(control[CONTROL_WAKE_PENDING], 1);
  t.wake(1); /* the last call: always made; the main thread joins after it */
  return 0;
}

/* 1 when this build can run the capture thread. */
int probe_ring_thread_supported(void) {
  return 1;
}

/* Starts the thread over the parameters in control[]; 0, or pthread_create's error. */
int probe_ring_thread_start(int *control) {
  probe_thread_t thread;
  control[CONTROL_STATE] = STATE_RUNNING;
  control[CONTROL_FAILURE] = FAILURE_NONE;
  control[CONTROL_WAKE_PENDING] = 0;
  control[CONTROL_WAITING_SPACE] = 0;
  int error = pthread_create(&thread, 0, ring_thread_main, control);
  if (error == 0) *(probe_thread_t *)(control + CONTROL_THREAD_ID) = thread;
  return error;
}

/* Joins a thread that has ended (its last wake-up was seen): returns at once. */
int probe_ring_thread_join(int *control) {
  return pthread_join(*(probe_thread_t *)(control + CONTROL_THREAD_ID), 0);
}

#else

int probe_ring_thread_supported(void) {
  return 0;
}

int probe_ring_thread_start(int *control) {
  return ENOSYS;
}

int probe_ring_thread_join(int *control) {
  return ENOSYS;
}

#endif

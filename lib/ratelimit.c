/*
 * ratelimit.c - per-address event counts in a shared table (ratelimit.h).
 *
 * Each slot is one 64-bit word: a tag of the address, the second its
 * window began, and the count.  Every change is a compare-and-swap of
 * that word, so there is no lock to hold and a process killed half way
 * leaves nothing half written.  Addresses are hashed with a random key kept
 * in the file, so nobody can pick addresses that share another's slots.
 */
#include "ratelimit.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/sha.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "netaddr.h"
#include "util.h"

_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2, "the shared table needs lock-free 64-bit atomics");

static const char table_magic[8] = {'E', 'E', 'R', 'L', 'I', 'M', '0', '1'};

struct table_header {
	char magic[8];
	uint32_t slots;
	uint32_t reserved;
	uint8_t key[32];
	uint8_t pad[16];
};

struct ratelimit {
	void *map;
	size_t map_len;
	const struct table_header *header;
	_Atomic uint64_t *slots;
};

#define TABLE_BYTES (sizeof(struct table_header) + RATELIMIT_SLOTS * sizeof(uint64_t))

/*
 * A slot: 24 bits of tag, the window's start as 28 bits of seconds
 * (compared modulo 2^28, about 8.5 years), 12 bits of count.  A wide tag
 * keeps two busy addresses from sharing a count by chance.
 */
#define START_BITS 28
#define START_MASK ((1u << START_BITS) - 1)

static uint64_t slot_word(uint32_t tag, uint32_t start, uint32_t count)
{
	return (uint64_t)tag << 40 | (uint64_t)(start & START_MASK) << 12 |
	       (count & RATELIMIT_MAX_COUNT);
}
static uint32_t slot_tag(uint64_t w) { return (uint32_t)(w >> 40); }
static uint32_t slot_start(uint64_t w) { return (uint32_t)(w >> 12) & START_MASK; }
static uint32_t slot_count(uint64_t w) { return (uint32_t)(w & RATELIMIT_MAX_COUNT); }

/* Seconds since the window began, modulo 2^28: a clock stepped back looks like an old window. */
static uint32_t slot_age(uint64_t w, int64_t now_sec)
{
	return ((uint32_t)now_sec - slot_start(w)) & START_MASK;
}

static bool header_valid(const struct table_header *h)
{
	return memcmp(h->magic, table_magic, sizeof(table_magic)) == 0 && h->slots == RATELIMIT_SLOTS;
}

static int header_write(struct table_header *h)
{
	memset(h, 0, sizeof(*h));
	memcpy(h->magic, table_magic, sizeof(table_magic));
	h->slots = RATELIMIT_SLOTS;
	return util_random_bytes(h->key, sizeof(h->key));
}

/* Under an exclusive lock: a table of the wrong size or kind is started afresh. */
static int file_prepare(int fd)
{
	struct stat st;
	struct table_header h;
	if (fstat(fd, &st) != 0)
		return -1;
	if ((size_t)st.st_size == TABLE_BYTES && pread(fd, &h, sizeof(h), 0) == (ssize_t)sizeof(h) &&
	    header_valid(&h))
		return 0;
	if (ftruncate(fd, 0) != 0 || ftruncate(fd, (off_t)TABLE_BYTES) != 0 || header_write(&h) != 0)
		return -1;
	return pwrite(fd, &h, sizeof(h), 0) == (ssize_t)sizeof(h) ? 0 : -1;
}

struct ratelimit *ratelimit_open(const char *path, struct ee_error *err)
{
	struct ratelimit *rl = calloc(1, sizeof(*rl));
	if (!rl) {
		ee_fail(err, 500, "out_of_memory");
		return NULL;
	}
	rl->map_len = TABLE_BYTES;
	if (path) {
		int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
		if (fd < 0) {
			ee_fail_detail(err, 500, "ratelimit_unavailable", strerror(errno));
			free(rl);
			return NULL;
		}
		int rc = -1;
		if (flock(fd, LOCK_EX) == 0) {
			rc = file_prepare(fd);
			flock(fd, LOCK_UN);
		}
		if (rc == 0) {
			rl->map = mmap(NULL, rl->map_len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
			if (rl->map == MAP_FAILED)
				rl->map = NULL;
		}
		close(fd);
	} else {
		/* Shared, so workers forked after this see one table. */
		rl->map = mmap(NULL, rl->map_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
		               -1, 0);
		if (rl->map == MAP_FAILED || header_write(rl->map) != 0) {
			if (rl->map != MAP_FAILED)
				munmap(rl->map, rl->map_len);
			rl->map = NULL;
		}
	}
	if (!rl->map) {
		ee_fail_detail(err, 500, "ratelimit_unavailable", strerror(errno));
		free(rl);
		return NULL;
	}
	rl->header = rl->map;
	rl->slots = (_Atomic uint64_t *)((char *)rl->map + sizeof(struct table_header));
	return rl;
}

void ratelimit_close(struct ratelimit *rl)
{
	if (!rl)
		return;
	munmap(rl->map, rl->map_len);
	free(rl);
}

/* The slot index and tag of an address: an IPv6 client is its /64, as one host gets one. */
static void address_hash(const struct ratelimit *rl, const char *address, size_t *index,
                         uint32_t *tag)
{
	uint8_t input[32 + 256];
	size_t len;
	struct netaddr a;
	memcpy(input, rl->header->key, 32);
	if (netaddr_parse(address, &a) == 0) {
		if (!netaddr_is_ipv4(&a))
			memset(a.bytes + 8, 0, 8);
		memcpy(input + 32, a.bytes, 16);
		len = 32 + 16;
	} else {
		size_t n = strnlen(address, 256);
		memcpy(input + 32, address, n);
		len = 32 + n;
	}
	uint8_t digest[SHA256_DIGEST_LENGTH];
	SHA256(input, len, digest);
	uint64_t h;
	memcpy(&h, digest, sizeof(h));
	*index = (size_t)(h % RATELIMIT_SLOTS);
	*tag = (uint32_t)(h >> 40) | 1; /* never 0: a zero word is an empty slot */
}

static bool window_open(uint64_t w, int64_t now_sec, int window_sec)
{
	return w != 0 && slot_age(w, now_sec) < (uint32_t)window_sec;
}

bool ratelimit_exceeded(struct ratelimit *rl, const char *address, int64_t now_sec, int limit,
                        int window_sec, int *retry_after_sec)
{
	size_t index;
	uint32_t tag;
	address_hash(rl, address, &index, &tag);
	for (size_t i = 0; i < RATELIMIT_PROBES; i++) {
		uint64_t w = atomic_load(&rl->slots[(index + i) % RATELIMIT_SLOTS]);
		if (slot_tag(w) != tag)
			continue;
		if (!window_open(w, now_sec, window_sec) || (int)slot_count(w) < limit)
			return false;
		int left = window_sec - (int)slot_age(w, now_sec);
		*retry_after_sec = left < 1 ? 1 : left;
		return true;
	}
	return false;
}

int ratelimit_hit(struct ratelimit *rl, const char *address, int64_t now_sec, int window_sec)
{
	size_t index;
	uint32_t tag;
	address_hash(rl, address, &index, &tag);
	uint32_t now32 = (uint32_t)now_sec;
	/* Lost races are retried; past that the event goes uncounted rather than spin. */
	for (int attempt = 0; attempt < 64; attempt++) {
		_Atomic uint64_t *own = NULL, *victim = NULL;
		uint64_t own_w = 0, victim_w = 0;
		for (size_t i = 0; i < RATELIMIT_PROBES; i++) {
			_Atomic uint64_t *slot = &rl->slots[(index + i) % RATELIMIT_SLOTS];
			uint64_t w = atomic_load(slot);
			if (w != 0 && slot_tag(w) == tag) {
				own = slot;
				own_w = w;
				break;
			}
			/* Take an empty or closed slot, else the one whose window began first. */
			bool free_slot = w == 0 || !window_open(w, now_sec, window_sec);
			bool victim_free = victim && (victim_w == 0 ||
			                              !window_open(victim_w, now_sec, window_sec));
			if (!victim || (free_slot && !victim_free) ||
			    (free_slot == victim_free &&
			     slot_age(w, now_sec) > slot_age(victim_w, now_sec))) {
				victim = slot;
				victim_w = w;
			}
		}
		_Atomic uint64_t *slot = own ? own : victim;
		uint64_t old = own ? own_w : victim_w;
		uint32_t count = 1;
		uint32_t start = now32;
		if (own && window_open(own_w, now_sec, window_sec)) {
			count = slot_count(own_w) + (slot_count(own_w) < RATELIMIT_MAX_COUNT);
			start = slot_start(own_w);
		}
		if (atomic_compare_exchange_strong(slot, &old, slot_word(tag, start, count)))
			return (int)count;
	}
	log_warn("rate limit table contended; an event went uncounted");
	return 0;
}

// Event load for the agent benchmark: many small HTTP/1.1-shaped request/response round trips over a few
// keep-alive TCP connections, multiplexed with epoll, so that the load costs little CPU per kernel event
// besides the syscalls and TCP themselves (bench/kernel/rr.c, one blocking thread per 1 KiB ping-pong, paid a
// context switch per read and topped out around 150 k attempted events/s on this 2-core machine).
// Kernel events through the engine's real programs: one egress event per send (each request and each
// response is its own send), one ingress event per read that starts a request or response burst (the engine
// marks a boundary where the reader's socket has sent since its last read). DEPTH 1 is a plain ping-pong,
// 4 events per round trip; DEPTH d pipelines d requests per burst: 2d + 2 events per d round trips.
//   evload server PORT THREADS                     SO_REUSEPORT listener per thread; answers each request
//   evload client IP PORT THREADS CONNS SECONDS [DEPTH]
//                     CONNS connections per thread; every other request carries a cohort trace id; DEPTH
//                     (default 1) requests per burst, pipelined (sent with MSG_MORE, answered likewise);
//                     prints "round_trips elapsed_ns"
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

// Same length for both trace ids, so every request is REQ_LEN bytes and every response RESP_LEN: the ends
// frame messages by length alone.
static const char COHORT[] = "GET /bench HTTP/1.1\r\nHost: bench\r\nx-trace-id: t-0123abcd-beef\r\n\r\n";
static const char PLAIN[] = "GET /bench HTTP/1.1\r\nHost: bench\r\nx-trace-id: u-0123abcd-beef\r\n\r\n";
static const char RESP[] = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
#define REQ_LEN ((int)sizeof(COHORT) - 1)
#define RESP_LEN ((int)sizeof(RESP) - 1)
#define MAX_EVENTS 256
#define MAX_DEPTH 64

struct conn {
	int fd;
	int got;            // bytes of the current burst read so far
	unsigned long sent; // requests sent (client)
};

static int depth_g = 1;
static int port_g;

static long long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void die(const char *what)
{
	perror(what);
	exit(1);
}

static void add(int ep, struct conn *c)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};

	if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev))
		die("epoll_ctl");
}

// One read of at most `room` bytes into c->got; the bytes, 0 for nothing yet, -1 on EOF/error.
static int read_some(struct conn *c, int room)
{
	static __thread char buf[64 * 1024];
	ssize_t n = read(c->fd, buf, (size_t)room < sizeof(buf) ? (size_t)room : sizeof(buf));

	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
		return -1;
	if (n < 0)
		return 0;
	c->got += (int)n;
	return (int)n;
}

// `count` messages, one send each (one tcp_sendmsg, so one egress event each); all but the last with
// MSG_MORE so a burst leaves as one segment. Small messages on a loopback socket buffer: a short send
// does not happen here, and if it did the peer would stall and the count would show it.
static int send_burst(int fd, const char *const *msgs, int len, int count)
{
	for (int i = 0; i < count; i++)
		if (send(fd, msgs[i], (size_t)len, i + 1 < count ? MSG_MORE : 0) != len)
			return -1;
	return 0;
}

static void *serve(void *arg)
{
	int one = 1, lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), ep = epoll_create1(0);
	struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(port_g)};
	struct epoll_event evs[MAX_EVENTS];
	struct conn listener = {.fd = lfd};
	const char *resps[MAX_DEPTH];

	(void)arg;
	for (int i = 0; i < MAX_DEPTH; i++)
		resps[i] = RESP;
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	setsockopt(lfd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
	if (bind(lfd, (struct sockaddr *)&addr, sizeof(addr)) || listen(lfd, 256))
		die("bind/listen");
	add(ep, &listener);
	for (;;) {
		int n = epoll_wait(ep, evs, MAX_EVENTS, -1);

		for (int i = 0; i < n; i++) {
			struct conn *c = evs[i].data.ptr;

			if (c == &listener) {
				int fd;

				while ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
					struct conn *nc = calloc(1, sizeof(*nc));

					if (!nc)
						die("calloc");
					nc->fd = fd;
					setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
					add(ep, nc);
				}
				continue;
			}
			// every complete request read is answered, the responses in one burst
			int r = read_some(c, MAX_DEPTH * REQ_LEN - c->got);
			int whole = r > 0 ? c->got / REQ_LEN : 0;

			if (r == 0)
				continue;
			c->got -= whole * REQ_LEN;
			if (r > 0 && (whole == 0 || send_burst(c->fd, resps, RESP_LEN, whole) == 0))
				continue;
			close(c->fd);
			free(c);
		}
	}
	return NULL;
}

static int server(int port, int threads)
{
	pthread_t t;

	port_g = port;
	for (int i = 1; i < threads; i++)
		if (pthread_create(&t, NULL, serve, NULL))
			die("pthread_create");
	printf("listening\n");
	fflush(stdout);
	serve(NULL);
	return 0;
}

struct client_args {
	const char *ip;
	int port, conns;
	long long until;
	unsigned long round_trips;
};

static int send_requests(struct conn *c)
{
	const char *reqs[MAX_DEPTH];

	for (int i = 0; i < depth_g; i++)
		reqs[i] = c->sent++ % 2 ? PLAIN : COHORT;
	return send_burst(c->fd, reqs, REQ_LEN, depth_g);
}

static void *drive(void *arg)
{
	struct client_args *a = arg;
	struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(a->port)};
	struct conn *conns = calloc((size_t)a->conns, sizeof(*conns));
	struct epoll_event evs[MAX_EVENTS];
	int one = 1, ep = epoll_create1(0), open = a->conns, burst = depth_g * RESP_LEN;

	if (!conns)
		die("calloc");
	inet_pton(AF_INET, a->ip, &addr.sin_addr);
	for (int i = 0; i < a->conns; i++) {
		struct conn *c = &conns[i];

		c->fd = socket(AF_INET, SOCK_STREAM, 0);
		if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&addr, sizeof(addr)))
			die("connect");
		setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		fcntl(c->fd, F_SETFL, O_NONBLOCK);
		add(ep, c);
		if (send_requests(c))
			die("send");
	}
	while (open > 0) {
		int n = epoll_wait(ep, evs, MAX_EVENTS, 1000);
		int done = now_ns() >= a->until;

		for (int i = 0; i < n; i++) {
			struct conn *c = evs[i].data.ptr;
			int r = read_some(c, burst - c->got);

			if (r == 0 || (r > 0 && c->got < burst))
				continue;
			if (r > 0) {
				a->round_trips += (unsigned long)depth_g;
				c->got = 0;
				if (!done && send_requests(c) == 0)
					continue;
			}
			// finished (the last burst is answered) or broken
			epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
			close(c->fd);
			open--;
		}
	}
	free(conns);
	return NULL;
}

static int client(const char *ip, int port, int threads, int conns, double seconds)
{
	pthread_t *t = calloc((size_t)threads, sizeof(*t));
	struct client_args *a = calloc((size_t)threads, sizeof(*a));
	long long start = now_ns();
	unsigned long total = 0;

	if (!t || !a)
		die("calloc");
	for (int i = 0; i < threads; i++) {
		a[i] = (struct client_args){
			.ip = ip, .port = port, .conns = conns, .until = start + (long long)(seconds * 1e9)};
		if (pthread_create(&t[i], NULL, drive, &a[i]))
			die("pthread_create");
	}
	for (int i = 0; i < threads; i++) {
		pthread_join(t[i], NULL);
		total += a[i].round_trips;
	}
	printf("%lu %lld\n", total, now_ns() - start);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 4 && !strcmp(argv[1], "server"))
		return server(atoi(argv[2]), atoi(argv[3]));
	if ((argc == 7 || argc == 8) && !strcmp(argv[1], "client")) {
		depth_g = argc == 8 ? atoi(argv[7]) : 1;
		if (depth_g < 1 || depth_g > MAX_DEPTH) {
			fprintf(stderr, "DEPTH must be 1..%d\n", MAX_DEPTH);
			return 2;
		}
		return client(argv[2], atoi(argv[3]), atoi(argv[4]), atoi(argv[5]), atof(argv[6]));
	}
	fprintf(stderr, "usage: evload server PORT THREADS | evload client IP PORT THREADS CONNS SECONDS [DEPTH]\n");
	return 2;
}

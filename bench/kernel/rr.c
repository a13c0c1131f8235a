// A 1 KiB request / 1 KiB response loop over one keep-alive TCP connection, HTTP/1.1-shaped so the dye
// engine's parsers do their real work. C, not a scripting language, so the loop adds no noise of its own.
//   rr server PORT            accept connections; per connection: read 1024 bytes, write 1024 bytes, repeat
//   rr client IP PORT N [E]   N round trips; every E-th request (default 2: every other one) carries a
//                             cohort trace id; prints "count median_ns p99_ns elapsed_ns" on stdout
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define SIZE 1024

static int full_io(int fd, char *buf, int len, int is_write)
{
	int done = 0;

	while (done < len) {
		ssize_t n = is_write ? write(fd, buf + done, len - done) : read(fd, buf + done, len - done);

		if (n <= 0)
			return -1;
		done += (int)n;
	}
	return 0;
}

static void fill(char *buf, const char *head)
{
	int n = (int)strlen(head);

	memcpy(buf, head, n);
	// Pad with one header line so the message stays valid HTTP and exactly SIZE bytes long.
	memcpy(buf + n, "x-pad: ", 7);
	memset(buf + n + 7, 'a', SIZE - n - 7 - 4);
	memcpy(buf + SIZE - 4, "\r\n\r\n", 4);
}

static void *serve(void *arg)
{
	int fd = (int)(long)arg, one = 1;
	char req[SIZE], resp[SIZE];

	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	fill(resp, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n");
	while (full_io(fd, req, SIZE, 0) == 0 && full_io(fd, resp, SIZE, 1) == 0)
		;
	close(fd);
	return NULL;
}

static int server(int port)
{
	int one = 1, lfd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(port)};

	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(lfd, (struct sockaddr *)&addr, sizeof(addr)) || listen(lfd, 64)) {
		perror("bind/listen");
		return 1;
	}
	printf("listening\n");
	fflush(stdout);
	for (;;) {
		pthread_t t;
		int fd = accept(lfd, NULL, NULL);

		if (fd >= 0 && pthread_create(&t, NULL, serve, (void *)(long)fd) == 0)
			pthread_detach(t);
	}
}

static long long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int cmp(const void *a, const void *b)
{
	long long x = *(const long long *)a, y = *(const long long *)b;

	return (x > y) - (x < y);
}

static int client(const char *ip, int port, int n, int every)
{
	int one = 1, fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(port)};
	char cohort[SIZE], plain[SIZE], resp[SIZE];
	long long *lat = calloc(n, sizeof(*lat)), start;

	inet_pton(AF_INET, ip, &addr.sin_addr);
	if (!lat || connect(fd, (struct sockaddr *)&addr, sizeof(addr))) {
		perror("connect");
		return 1;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	fill(cohort, "GET /bench HTTP/1.1\r\nHost: bench\r\nx-trace-id: t-0123abcd-beef\r\n");
	fill(plain, "GET /bench HTTP/1.1\r\nHost: bench\r\nx-trace-id: u-0123abcd-beef\r\n");
	start = now_ns();
	for (int i = 0; i < n; i++) {
		long long t0 = now_ns();

		if (full_io(fd, i % every ? plain : cohort, SIZE, 1) || full_io(fd, resp, SIZE, 0)) {
			fprintf(stderr, "round trip %d failed\n", i);
			return 1;
		}
		lat[i] = now_ns() - t0;
	}
	long long elapsed = now_ns() - start;

	qsort(lat, n, sizeof(*lat), cmp);
	printf("%d %lld %lld %lld\n", n, lat[n / 2], lat[(int)(n * 0.99)], elapsed);
	close(fd);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "server"))
		return server(atoi(argv[2]));
	if ((argc == 5 || argc == 6) && !strcmp(argv[1], "client"))
		return client(argv[2], atoi(argv[3]), atoi(argv[4]), argc == 6 && atoi(argv[5]) > 0 ? atoi(argv[5]) : 2);
	fprintf(stderr, "usage: rr server PORT | rr client IP PORT N [EVERY]\n");
	return 2;
}

/* sim_load: test tool. Drives the gateway simulator the way the relay
 * does (a fresh TCP connection per charge POST, many in flight) and
 * reports what the simulator's process spent in CPU to answer them, so
 * that the simulator's own cost per request can be measured and compared.
 *
 *   sim_load URL REQUESTS IN_FLIGHT [SIM_PID]
 *
 * POSTs REQUESTS charges to URL/v1/charges, IN_FLIGHT at a time, each with
 * its own idempotency key; gives up after 10 minutes. With SIM_PID, reads
 * that process's utime+stime from /proc before the first request and after
 * the last. Prints one line (min_wait_s: the shortest time from a request
 * sent to the first byte of its answer, the simulator's own delay):
 *   requests=N ok=N failed=N seconds=S per_s=R min_wait_s=S sim_cpu_s=C sim_cpu_s_per_1000=C
 * Exit 0 when every request got a 200. */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define RUN_LIMIT_S 600.0 /* a stuck simulator must not hold the run forever */

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* utime + stime of a process, in seconds; -1 when unreadable. */
static double process_cpu_s(long pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* The command name (field 2) may hold spaces: count fields after its ')'. */
	char *p = strrchr(buf, ')');
	if (!p)
		return -1;
	unsigned long long utime = 0, stime = 0;
	if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime,
		   &stime) != 2)
		return -1;
	return (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
}

static size_t discard(char *data, size_t size, size_t n, void *cls)
{
	(void)data, (void)cls;
	return size * n;
}

struct request {
	CURL *easy;
	struct curl_slist *headers;
	char body[128];
};

static int request_start(CURLM *multi, struct request *r, const char *url, const char *run,
			 long i)
{
	char key[96];
	snprintf(key, sizeof(key), "Idempotency-Key: load-%s-%ld", run, i);
	snprintf(r->body, sizeof(r->body),
		 "amount=%ld&currency=usd&customer=cus_load_%ld&metadata[outbox_id]=%ld",
		 100 + i % 900, i % 1000, i);
	r->headers = curl_slist_append(NULL, "Authorization: Bearer sk_test_load");
	r->headers = r->headers ? curl_slist_append(r->headers, key) : NULL;
	r->easy = curl_easy_init();
	if (!r->headers || !r->easy)
		return -1;
	curl_easy_setopt(r->easy, CURLOPT_URL, url);
	curl_easy_setopt(r->easy, CURLOPT_HTTPHEADER, r->headers);
	curl_easy_setopt(r->easy, CURLOPT_POSTFIELDS, r->body);
	curl_easy_setopt(r->easy, CURLOPT_WRITEFUNCTION, discard);
	/* as the relay: never reuse a connection for a charge POST */
	curl_easy_setopt(r->easy, CURLOPT_FRESH_CONNECT, 1L);
	curl_easy_setopt(r->easy, CURLOPT_FORBID_REUSE, 1L);
	curl_easy_setopt(r->easy, CURLOPT_TIMEOUT, 60L);
	curl_easy_setopt(r->easy, CURLOPT_PRIVATE, r);
	return curl_multi_add_handle(multi, r->easy) == CURLM_OK ? 0 : -1;
}

static void request_free(struct request *r)
{
	curl_easy_cleanup(r->easy);
	curl_slist_free_all(r->headers);
	free(r);
}

int main(int argc, char **argv)
{
	if (argc < 4 || atol(argv[2]) < 1 || atol(argv[3]) < 1) {
		fprintf(stderr, "usage: sim_load URL REQUESTS IN_FLIGHT [SIM_PID]\n");
		return 2;
	}
	long total = atol(argv[2]), in_flight = atol(argv[3]);
	long pid = argc > 4 ? atol(argv[4]) : 0;
	char url[512], run[32];
	snprintf(url, sizeof(url), "%s/v1/charges", argv[1]);
	snprintf(run, sizeof(run), "%ld-%ld", (long)getpid(), (long)time(NULL));

	/* every request in flight holds a descriptor */
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);
	CURLM *multi = curl_multi_init();
	if (!multi)
		return 1;

	long started = 0, running = 0, ok = 0, failed = 0;
	double min_wait_s = 0;
	double cpu0 = pid ? process_cpu_s(pid) : 0, t0 = now();
	while ((started < total || running > 0) && now() - t0 < RUN_LIMIT_S) {
		while (started < total && running < in_flight) {
			struct request *r = calloc(1, sizeof(*r));
			if (!r || request_start(multi, r, url, run, started) != 0) {
				fprintf(stderr, "sim_load: cannot start a request\n");
				return 1;
			}
			started++, running++;
		}
		int still;
		curl_multi_perform(multi, &still);
		CURLMsg *m;
		int left;
		while ((m = curl_multi_info_read(multi, &left))) {
			if (m->msg != CURLMSG_DONE)
				continue;
			struct request *r;
			long code = 0;
			curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&r);
			curl_easy_getinfo(m->easy_handle, CURLINFO_RESPONSE_CODE, &code);
			double sent = 0, first_byte = 0;
			curl_easy_getinfo(m->easy_handle, CURLINFO_PRETRANSFER_TIME, &sent);
			curl_easy_getinfo(m->easy_handle, CURLINFO_STARTTRANSFER_TIME, &first_byte);
			if (ok + failed == 0 || first_byte - sent < min_wait_s)
				min_wait_s = first_byte - sent;
			if (m->data.result == CURLE_OK && code == 200)
				ok++;
			else
				failed++;
			curl_multi_remove_handle(multi, m->easy_handle);
			request_free(r);
			running--;
		}
		curl_multi_poll(multi, NULL, 0, 100, NULL);
	}
	double secs = now() - t0, cpu = pid ? process_cpu_s(pid) - cpu0 : 0;
	curl_multi_cleanup(multi);
	curl_global_cleanup();
	printf("requests=%ld ok=%ld failed=%ld seconds=%.2f per_s=%.0f min_wait_s=%.3f sim_cpu_s=%.2f "
	       "sim_cpu_s_per_1000=%.3f\n",
	       started, ok, failed, secs, (double)(ok + failed) / secs, min_wait_s, cpu,
	       cpu * 1000.0 / (double)(ok + failed > 0 ? ok + failed : 1));
	return ok == total ? 0 : 1;
}

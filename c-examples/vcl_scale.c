/* vcl_scale: what many sessions cost, in one app over cut-through. Uses only vppcom.h.
 *   vcl_scale [N=10000] [READY=10] [PORT=7999] [IP=127.0.0.1]
 * A child process (its own app) listens on IP:PORT and accepts; this one attaches (timed),
 * connects N sessions to it, then measures epoll_wait(timeout 0) with READY readable sessions among READY
 * registered and among N registered (best of several alternating rounds, so a loaded machine
 * hits both alike), the process's RSS before and after the sessions exist, and detach time.
 * One line of key=value figures at the end, for scripts. */
#include <vcl/vppcom.h>

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double
now (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static long
rss_kib (void)
{
  char line[256];
  long kb = -1;
  FILE *f = fopen ("/proc/self/status", "r");
  while (f && fgets (line, sizeof (line), f))
    if (!strncmp (line, "VmRSS:", 6))
      kb = atol (line + 6);
  if (f)
    fclose (f);
  return kb;
}

/* KiB of this process's RSS in shared memfd mappings (the fifo and mq segments VPP sends): the
 * pages of them it touched, whoever else touched the rest. */
static long
shm_rss_kib (void)
{
  char line[512], perms[8];
  long kb = 0, v;
  int shared = 0;
  FILE *f = fopen ("/proc/self/smaps", "r");
  while (f && fgets (line, sizeof (line), f))
    if (sscanf (line, "%*x-%*x %7s", perms) == 1 && strchr (line, '-') < strchr (line, ' '))
      shared = perms[3] == 's' && strstr (line, " /memfd:");
    else if (shared && sscanf (line, "Rss: %ld kB", &v) == 1)
      kb += v;
  if (f)
    fclose (f);
  return f ? kb : -1;
}

static int
die (const char *what, int rv)
{
  fprintf (stderr, "vcl_scale: %s: %d (%s)\n", what, rv, vppcom_retval_str (rv));
  return 1;
}

/* ns per epoll_wait(timeout 0) over `nreg` registered client sessions of which `ready` are
 * readable; -1 if the ready ones do not all show. */
static double
epoll_cost (int *cli, int nreg, int ready, int calls)
{
  struct epoll_event ev, evs[64];
  int vep = vppcom_epoll_create (), i, n = 0;
  double t0, deadline;

  if (vep < 0)
    return -1;
  for (i = 0; i < nreg; i++)
    {
      memset (&ev, 0, sizeof (ev));
      ev.events = EPOLLIN;
      ev.data.u32 = i;
      if (vppcom_epoll_ctl (vep, EPOLL_CTL_ADD, cli[i], &ev))
	return -1;
    }
  deadline = now () + 10;
  while ((n = vppcom_epoll_wait (vep, evs, 64, 10)) != ready && now () < deadline)
    ;
  if (n != ready)
    {
      fprintf (stderr, "vcl_scale: %d of %d ready sessions seen\n", n, ready);
      return -1;
    }
  t0 = now ();
  for (i = 0; i < calls; i++)
    if (vppcom_epoll_wait (vep, evs, 64, 0) != ready)
      return -1;
  t0 = (now () - t0) / calls * 1e9;
  vppcom_session_close (vep);
  return t0;
}

/* The server: its own app in a child process (VPP refuses a cut-through connect to the
 * connecting app's own listener). Accepts n sessions, then on a byte from `go` writes one byte
 * to the first `ready` of them, and holds them until `go` closes. */
static int
server (uint8_t *ip, int port, int n, int ready, int up, int go)
{
  vppcom_endpt_t e;
  uint8_t peer[16];
  int ls, rv, i, *srv = calloc (n, sizeof (int));
  char c;

  if ((rv = vppcom_app_create ("vcl_scale_server")))
    return die ("server app create", rv);
  memset (&e, 0, sizeof (e));
  e.is_ip4 = 1;
  e.ip = ip;
  e.port = htons (port);
  if ((ls = vppcom_session_create (VPPCOM_PROTO_TCP, 0)) < 0)
    return die ("session create", ls);
  if ((rv = vppcom_session_bind (ls, &e)) || (rv = vppcom_session_listen (ls, 1024)))
    return die ("bind/listen", rv);
  if (write (up, "L", 1) != 1)
    return 1;
  for (i = 0; i < n; i++)
    {
      e.ip = peer;
      if ((srv[i] = vppcom_session_accept (ls, &e, 0)) < 0)
	return die ("accept", srv[i]);
    }
  if (read (go, &c, 1) != 1)
    return 1;
  for (i = 0; i < ready; i++)
    if ((rv = vppcom_session_write (srv[i], "x", 1)) != 1)
      return die ("write", rv);
  while (read (go, &c, 1) > 0)
    ;
  for (i = 0; i < n; i++)
    vppcom_session_close (srv[i]);
  vppcom_session_close (ls);
  vppcom_app_destroy ();
  return 0;
}

int
main (int argc, char **argv)
{
  int n = argc > 1 ? atoi (argv[1]) : 10000, ready = argc > 2 ? atoi (argv[2]) : 10;
  int port = argc > 3 ? atoi (argv[3]) : 7999, rv, i, r, up[2], go[2], status;
  const char *ipstr = argc > 4 ? argv[4] : "127.0.0.1";
  uint8_t ip[4];
  vppcom_endpt_t e;
  int *cli;
  double t, attach_us, detach_us, best_small = 1e18, best_big = 1e18, c;
  long rss0, rss1, shm0, shm1;
  pid_t child;
  char ch;

  if (n < 1 || ready < 1 || ready > n || ready > 64 || inet_pton (AF_INET, ipstr, ip) != 1)
    {
      fprintf (stderr, "usage: vcl_scale [N] [READY<=64] [PORT] [IP]\n");
      return 2;
    }
  if (pipe (up) || pipe (go))
    return 1;
  if ((child = fork ()) == 0)
    {
      close (up[0]);
      close (go[1]);
      _exit (server (ip, port, n, ready, up[1], go[0]));
    }
  close (up[1]);
  close (go[0]);
  if (read (up[0], &ch, 1) != 1)
    return die ("server did not start", -1);
  cli = calloc (n, sizeof (int));
  t = now ();
  if ((rv = vppcom_app_create ("vcl_scale")))
    return die ("app create", rv);
  attach_us = (now () - t) * 1e6;
  rss0 = rss_kib ();
  shm0 = shm_rss_kib ();

  memset (&e, 0, sizeof (e));
  e.is_ip4 = 1;
  e.ip = ip;
  e.port = htons (port);
  t = now ();
  for (i = 0; i < n; i++)
    {
      if ((cli[i] = vppcom_session_create (VPPCOM_PROTO_TCP, 0)) < 0)
	return die ("session create", cli[i]);
      if ((rv = vppcom_session_connect (cli[i], &e)))
	return die ("connect", rv);
      if ((i + 1) % 1000 == 0)
	fprintf (stderr, "\rvcl_scale: %d sessions connected", i + 1);
    }
  fprintf (stderr, "\n");
  printf ("vcl_scale: %d sessions connected in %.2f s\n", n, now () - t);
  rss1 = rss_kib ();
  shm1 = shm_rss_kib ();
  if (write (go[1], "W", 1) != 1)
    return 1;
  for (r = 0; r < 5; r++)
    {
      if ((c = epoll_cost (cli, ready, ready, 20000)) < 0)
	return die ("epoll_wait (small set)", -1);
      best_small = c < best_small ? c : best_small;
      if ((c = epoll_cost (cli, n, ready, 20000)) < 0)
	return die ("epoll_wait (large set)", -1);
      best_big = c < best_big ? c : best_big;
    }
  printf ("vcl_scale: epoll_wait with %d ready: %.0f ns among %d registered, %.0f ns among %d "
	  "(%.2fx)\n",
	  ready, best_small, ready, best_big, n, best_big / best_small);
  printf ("vcl_scale: RSS %ld KiB attached, %ld KiB with %d sessions (%.2f KiB each; in shared "
	  "segments %ld KiB, %ld KiB, %.2f KiB each)\n",
	  rss0, rss1, n, (double) (rss1 - rss0) / n, shm0, shm1, (double) (shm1 - shm0) / n);
  for (i = 0; i < n; i++)
    vppcom_session_close (cli[i]);
  t = now ();
  vppcom_app_destroy ();
  detach_us = (now () - t) * 1e6;
  close (go[1]);
  waitpid (child, &status, 0);
  printf ("vcl_scale: attach %.0f us, detach %.0f us\n", attach_us, detach_us);
  printf ("vcl_scale: n=%d ready=%d epoll_small_ns=%.0f epoll_big_ns=%.0f epoll_ratio=%.2f "
	  "rss0_kib=%ld rss_kib=%ld shm0_kib=%ld shm_kib=%ld attach_us=%.0f detach_us=%.0f\n",
	  n, ready, best_small, best_big, best_big / best_small, rss0, rss1, shm0, shm1, attach_us,
	  detach_us);
  free (cli);
  return 0;
}

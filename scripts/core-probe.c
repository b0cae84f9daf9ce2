/* core-probe CPU_A CPU_B: how long one cache line takes to move between two CPUs, in ns.
 *
 * make bench runs it before and after every stream run. On the 2-vCPU KVM guests this project
 * is measured on, a line moves between the two vCPUs in either ~55 ns or ~250 ns, and the
 * figure switches every few seconds: the host places the vCPUs on cores that share a
 * last-level cache, or on cores that do not. Stream throughput follows it (a cut-through stream
 * moves every byte between the two CPUs), for upstream's library as for ours, so bench only
 * compares runs that saw the same placement (docs/benchmarking.md).
 *
 * Two threads bounce a counter through one line; the figure is the median of 31 batches of
 * 1000 round trips, so a batch stretched by preemption does not move it. */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define BATCHES 31
#define TRIPS 1000

static _Alignas (64) atomic_long line;
static int cpu_b;

static double
now_ns (void)
{
  struct timespec t;
  clock_gettime (CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e9 + t.tv_nsec;
}

static int
pin (int cpu)
{
  cpu_set_t s;
  CPU_ZERO (&s);
  CPU_SET (cpu, &s);
  return pthread_setaffinity_np (pthread_self (), sizeof (s), &s);
}

static void *
answer (void *arg)
{
  (void) arg;
  pin (cpu_b); /* main checked that it can */
  for (long i = 0; i < (long) BATCHES * TRIPS; i++)
    {
      while (atomic_load_explicit (&line, memory_order_acquire) != 2 * i + 1)
	;
      atomic_store_explicit (&line, 2 * i + 2, memory_order_release);
    }
  return NULL;
}

static int
cmp (const void *a, const void *b)
{
  double x = *(const double *) a, y = *(const double *) b;
  return (x > y) - (x < y);
}

int
main (int argc, char **argv)
{
  pthread_t t;
  double batch[BATCHES];
  if (argc != 3)
    {
      fprintf (stderr, "usage: core-probe CPU_A CPU_B\n");
      return 2;
    }
  cpu_b = atoi (argv[2]);
  if (cpu_b == atoi (argv[1]) || pin (cpu_b) || pin (atoi (argv[1])))
    {
      fprintf (stderr, "core-probe: needs two different CPUs it may run on, got %s and %s\n",
	       argv[1], argv[2]);
      return 1;
    }
  if (pthread_create (&t, NULL, answer, NULL))
    return 1;
  for (long b = 0, i = 0; b < BATCHES; b++)
    {
      double t0 = now_ns ();
      for (long k = 0; k < TRIPS; k++, i++)
	{
	  atomic_store_explicit (&line, 2 * i + 1, memory_order_release);
	  while (atomic_load_explicit (&line, memory_order_acquire) != 2 * i + 2)
	    ;
	}
      batch[b] = (now_ns () - t0) / TRIPS / 2;
    }
  pthread_join (t, NULL);
  qsort (batch, BATCHES, sizeof (batch[0]), cmp);
  printf ("%.0f\n", batch[BATCHES / 2]);
  return 0;
}

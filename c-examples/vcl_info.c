/* vcl_info: print libvcl's version and the configuration vppcom_app_create would use,
 * then try to attach to VPP and say what happened. Uses only vppcom.h. */
#include <vcl/vppcom.h>

#include <stdio.h>

int
main (int argc, char **argv)
{
  char cfg[4096];
  int rv;

  printf ("libvcl %s\n", vcl_version ());
  rv = vcl_config_show (cfg, sizeof (cfg));
  if (rv < 0)
    {
      printf ("configuration error: %s (%d)\n", vppcom_retval_str (rv), rv);
      return 1;
    }
  printf ("%s", cfg);

  rv = vppcom_app_create (argc > 1 ? argv[1] : "vcl_info");
  if (rv)
    {
      printf ("attach to VPP: failed (%d, %s)\n", rv, vppcom_retval_str (rv));
      return 2;
    }
  printf ("attach to VPP: ok, worker %d\n", vppcom_worker_index ());
  vppcom_app_destroy ();
  return 0;
}

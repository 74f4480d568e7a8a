// Flavors of ambig_pair that agree on b's offset (and one without b at all):
// libbpf accepts duplicate candidates as long as they agree.
struct ambig_pair { long x; int a; int b; };
struct ambig_pair___v2 { int a; int q; char r[4]; int b; };
struct ambig_pair___v3 { long z; int a; };
struct ambig_pair *p1;
struct ambig_pair___v2 *p2;
struct ambig_pair___v3 *p3;

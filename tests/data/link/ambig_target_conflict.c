// A "kernel" whose BTF holds two flavors of ambig_pair that disagree on b.
struct ambig_pair { int a; int b; };
struct ambig_pair___v2 { int b; int a; };
struct ambig_pair *p1;
struct ambig_pair___v2 *p2;

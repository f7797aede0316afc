// libyaml: the YAML event parser.
#include <yaml.h>

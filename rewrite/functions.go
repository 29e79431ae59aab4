package rewrite

import (
	"strings"

	pg "github.com/pganalyze/pg_query_go/v5"
)

// allowedFunctions is the built-in allowlist: functions that compute on their
// arguments and read nothing else. A call must name one of them unqualified
// or in schema pg_catalog; everything else is refused, because a function
// can read anything (PL/pgSQL, SECURITY DEFINER, C) and only a list of known
// ones is sound. greatest, least, coalesce and nullif are syntax (their own
// nodes), listed only for the function-call spelling some tools emit.
var allowedFunctions = toSet(`
count sum avg min max bool_and bool_or every string_agg array_agg json_agg jsonb_agg
json_object_agg jsonb_object_agg stddev stddev_pop stddev_samp variance var_pop var_samp
bit_and bit_or percentile_cont percentile_disc mode
row_number rank dense_rank percent_rank cume_dist ntile lag lead first_value last_value nth_value
lower upper length char_length character_length octet_length bit_length substr substring
trim btrim ltrim rtrim replace concat concat_ws left right position strpos split_part lpad rpad
initcap repeat reverse md5 sha256 sha512 format regexp_replace regexp_match regexp_matches
regexp_split_to_array regexp_split_to_table starts_with translate to_char to_number to_date
to_timestamp ascii chr quote_literal quote_ident quote_nullable overlay normalize
abs ceil ceiling floor round trunc mod power pow sqrt cbrt sign div exp ln log log10 pi
random degrees radians sin cos tan asin acos atan atan2 width_bucket gcd lcm scale
now date_trunc date_part extract age make_date make_time make_timestamp make_timestamptz
make_interval clock_timestamp statement_timestamp transaction_timestamp timezone
justify_days justify_hours justify_interval isfinite date_bin
json_build_object jsonb_build_object json_build_array jsonb_build_array to_json to_jsonb
json_extract_path json_extract_path_text jsonb_extract_path jsonb_extract_path_text jsonb_set
jsonb_insert jsonb_array_length json_array_length jsonb_typeof json_typeof jsonb_strip_nulls
json_strip_nulls jsonb_pretty row_to_json array_to_json json_object jsonb_object
jsonb_array_elements jsonb_array_elements_text json_array_elements json_array_elements_text
jsonb_each jsonb_each_text json_each json_each_text jsonb_object_keys json_object_keys
jsonb_path_query jsonb_path_exists jsonb_path_match jsonb_path_query_array jsonb_path_query_first
array_length array_lower array_upper array_ndims array_dims cardinality array_position
array_positions array_remove array_replace array_append array_prepend array_cat unnest
array_to_string string_to_array array_fill
generate_series generate_subscripts gen_random_uuid encode decode
num_nulls num_nonnulls nullif coalesce greatest least
similar_to_escape like_escape overlaps is_normalized
`)

// refusedClasses explains, for well-known dangerous functions, why they are
// not on the allowlist. It only improves the message: a function that is in
// neither list is refused all the same. A name matches a class when it is
// listed or starts with a listed prefix ending in "*".
var refusedClasses = []struct {
	why   string
	names []string
}{
	{"it runs SQL text, which the proxy never sees and cannot scope",
		strings.Fields("query_to_xml* query_to_xmlschema cursor_to_xml* table_to_xml* schema_to_xml* database_to_xml* dblink* ts_stat ts_rewrite")},
	{"it reads the server's files or large objects, outside every tenant's rows",
		strings.Fields("pg_read_file pg_read_binary_file pg_ls_* pg_stat_file lo_* loread lowrite")},
	{"sequences are relations outside the tenant catalog, shared by every tenant",
		strings.Fields("nextval currval setval lastval")},
	{"it reads or changes server settings, which the proxy controls",
		strings.Fields("set_config current_setting")},
	{"it acts on the server or on other sessions, which belong to every tenant",
		strings.Fields("pg_sleep* pg_terminate_backend pg_cancel_backend pg_reload_conf pg_rotate_logfile pg_notify pg_advisory_* pg_try_advisory_*")},
	{"it reads the system catalogs or statistics, which describe every tenant's data",
		strings.Fields("pg_* has_* to_reg* obj_description col_description shobj_description txid_* format_type")},
}

// whyRefused returns the class explanation for a refused function name, or "".
func whyRefused(name string) string {
	for _, c := range refusedClasses {
		for _, n := range c.names {
			if p, ok := strings.CutSuffix(n, "*"); ok && strings.HasPrefix(name, p) || n == name {
				return c.why
			}
		}
	}
	return ""
}

func toSet(words string) map[string]bool {
	m := map[string]bool{}
	for _, w := range strings.Fields(words) {
		m[w] = true
	}
	return m
}

// funcCall checks a call against the allowlist and walks its arguments.
func (w *walker) funcCall(f *pg.FuncCall) {
	names := f.GetFuncname()
	if len(names) == 0 {
		w.fail(refusef("unsupported function call"))
		return
	}
	name := qualified(names)
	short := names[len(names)-1].GetString_().GetSval()
	if (len(names) > 1 && names[0].GetString_().GetSval() != "pg_catalog") || len(names) > 2 || !allowedFunctions[short] {
		hint := "only built-in functions that compute on their arguments are allowed, because others may run SQL text or read " +
			"outside the tenant's rows; a function known to be safe can be allowed in the catalog in a later version"
		if why := whyRefused(short); why != "" {
			hint = short + " is refused because " + why
		}
		w.fail(&Rejection{Code: codeRefused, Reason: "function " + name + " is not allowed", Hint: hint,
			Position: int(f.GetLocation()) + 1})
		return
	}
	w.exprs(f.GetArgs())
	w.exprs(f.GetAggOrder())
	w.expr(f.GetAggFilter())
	w.windowDef(f.GetOver())
}

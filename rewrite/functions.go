package rewrite

import (
	"strings"

	pg "github.com/pganalyze/pg_query_go/v5"
)

// allowedFunctions is the built-in allowlist: functions that compute on their
// arguments and read nothing else. Everything else is refused, in particular
// functions that run SQL text (query_to_xml, dblink), read files or large
// objects (pg_read_file, lo_get), touch sequences or settings (nextval,
// set_config, current_setting), signal backends, sleep, or read the system
// catalogs (pg_get_*, has_*_privilege, to_regclass). The catalog may allow
// more in a later version.
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
`)

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
		w.fail(&Rejection{Code: codeRefused, Reason: "function " + name + " is not allowed",
			Hint:     "only built-in functions that read nothing but their arguments are allowed; functions that run SQL text or read outside the tenant's rows never are",
			Position: int(f.GetLocation()) + 1})
		return
	}
	w.exprs(f.GetArgs())
	w.exprs(f.GetAggOrder())
	w.expr(f.GetAggFilter())
	w.windowDef(f.GetOver())
}

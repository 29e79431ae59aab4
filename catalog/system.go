package catalog

import "strings"

// The system catalogs describe the schema that drivers, ORMs and psql read
// at connect and introspection time. Most of them hold metadata only, the
// same for every tenant; some carry other tenants' data or activity
// (statistics, sessions, large objects, password hashes, sequence
// positions). Only the listed relations are readable through the proxy,
// read-only; a catalog may allow more (Snapshot.AllowedRelations).

// SystemSchemas are the schemas whose relations the catalog never lists as
// tenant tables: their relations are judged by the system allowlist.
var SystemSchemas = map[string]bool{"pg_catalog": true, "information_schema": true, "pg_toast": true}

// builtinSystemRelations are readable system relations (schema.name).
var builtinSystemRelations = setOf("pg_catalog.", `
pg_aggregate pg_am pg_amop pg_amproc pg_attrdef pg_attribute pg_auth_members
pg_available_extension_versions pg_available_extensions pg_cast pg_class pg_collation
pg_constraint pg_conversion pg_database pg_default_acl pg_depend pg_description pg_enum
pg_event_trigger pg_extension pg_foreign_data_wrapper pg_foreign_server pg_foreign_table
pg_group pg_index pg_indexes pg_inherits pg_init_privs pg_language pg_matviews pg_namespace
pg_opclass pg_operator pg_opfamily pg_partitioned_table pg_policies pg_policy pg_proc
pg_publication pg_publication_namespace pg_publication_rel pg_publication_tables pg_range
pg_rewrite pg_roles pg_rules pg_seclabel pg_seclabels pg_sequence pg_settings pg_shdepend
pg_shdescription pg_shseclabel pg_statistic_ext pg_tables pg_tablespace pg_timezone_abbrevs
pg_timezone_names pg_transform pg_trigger pg_ts_config pg_ts_config_map pg_ts_dict
pg_ts_parser pg_ts_template pg_type pg_user pg_views`,
	"information_schema.", `
administrable_role_authorizations applicable_roles attributes character_sets
check_constraint_routine_usage check_constraints collation_character_set_applicability
collations column_column_usage column_domain_usage column_options column_privileges
column_udt_usage columns constraint_column_usage constraint_table_usage
data_type_privileges domain_constraints domain_udt_usage domains element_types
enabled_roles foreign_data_wrapper_options foreign_data_wrappers foreign_server_options
foreign_servers foreign_table_options foreign_tables information_schema_catalog_name
key_column_usage parameters referential_constraints role_column_grants
role_routine_grants role_table_grants role_udt_grants role_usage_grants
routine_column_usage routine_privileges routine_routine_usage routine_sequence_usage
routine_table_usage routines schemata sequences sql_features sql_implementation_info
sql_parts sql_sizing table_constraints table_privileges tables transforms
triggered_update_columns triggers udt_privileges usage_privileges user_defined_types
view_column_usage view_routine_usage view_table_usage views`)

// pgCatalogRelations are every relation of pg_catalog (Postgres 15 and
// later): an unqualified name among them means the pg_catalog relation,
// which Postgres searches before the search_path.
var pgCatalogRelations = setOf("", `
pg_aggregate pg_am pg_amop pg_amproc pg_attrdef pg_attribute pg_auth_members pg_authid
pg_available_extension_versions pg_available_extensions pg_backend_memory_contexts pg_cast
pg_class pg_collation pg_config pg_constraint pg_conversion pg_cursors pg_database
pg_db_role_setting pg_default_acl pg_depend pg_description pg_enum pg_event_trigger
pg_extension pg_file_settings pg_foreign_data_wrapper pg_foreign_server pg_foreign_table
pg_group pg_hba_file_rules pg_ident_file_mappings pg_index pg_indexes pg_inherits
pg_init_privs pg_language pg_largeobject pg_largeobject_metadata pg_locks pg_matviews
pg_namespace pg_opclass pg_operator pg_opfamily pg_parameter_acl pg_partitioned_table
pg_policies pg_policy pg_prepared_statements pg_prepared_xacts pg_proc pg_publication
pg_publication_namespace pg_publication_rel pg_publication_tables pg_range
pg_replication_origin pg_replication_origin_status pg_replication_slots pg_rewrite pg_roles
pg_rules pg_seclabel pg_seclabels pg_sequence pg_sequences pg_settings pg_shadow pg_shdepend
pg_shdescription pg_shmem_allocations pg_shseclabel pg_statistic pg_statistic_ext
pg_statistic_ext_data pg_stats pg_stats_ext pg_stats_ext_exprs pg_subscription
pg_subscription_rel pg_tables pg_tablespace pg_timezone_abbrevs pg_timezone_names
pg_transform pg_trigger pg_ts_config pg_ts_config_map pg_ts_dict pg_ts_parser
pg_ts_template pg_type pg_user pg_user_mapping pg_user_mappings pg_views
pg_stat_io pg_wait_events pg_stat_checkpointer`)

// IsPgCatalogRelation reports whether an unqualified name means a relation
// of pg_catalog (every pg_stat_* and pg_statio_* view included).
func IsPgCatalogRelation(name string) bool {
	return pgCatalogRelations[name] || strings.HasPrefix(name, "pg_stat_") || strings.HasPrefix(name, "pg_statio_")
}

// SystemRelationAllowed reports whether tenants may read the system
// relation schema.name: on the built-in list or allowed by the catalog.
func (s *Snapshot) SystemRelationAllowed(schema, name string) bool {
	q := schema + "." + name
	return builtinSystemRelations[q] || s.relations[q]
}

// builtinSchemaFunctions are functions outside pg_catalog that are always
// allowed (schema.name): information_schema's helpers, plain SQL over their
// arguments and the system catalogs, which drivers call when they read
// metadata (pgjdbc's getPrimaryKeys uses _pg_expandarray).
var builtinSchemaFunctions = setOf("information_schema.", `
_pg_expandarray _pg_index_position _pg_truetypid _pg_truetypmod _pg_char_max_length
_pg_char_octet_length _pg_numeric_precision _pg_numeric_precision_radix _pg_numeric_scale
_pg_datetime_precision _pg_interval_type`)

// FunctionAllowed reports whether a function beyond the rewriter's built-in
// list may be called: allowed by the catalog (name as written, lower case:
// a bare name for a pg_catalog function, schema.name for others) or one of
// information_schema's helpers.
func (s *Snapshot) FunctionAllowed(name string) bool {
	return s.functions[name] || builtinSchemaFunctions[name]
}

func setOf(prefixAndWords ...string) map[string]bool {
	m := map[string]bool{}
	for i := 0; i+1 < len(prefixAndWords); i += 2 {
		for _, w := range strings.Fields(prefixAndWords[i+1]) {
			m[prefixAndWords[i]+w] = true
		}
	}
	return m
}

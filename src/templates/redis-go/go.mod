module {{project-name | kebab_case}}

go 1.21

// tracker placeholder until built

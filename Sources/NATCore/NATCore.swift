// NATCore
